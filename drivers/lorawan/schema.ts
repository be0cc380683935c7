/**
 * Config block of the LoRaWAN driver: one UDP listener for Semtech packet forwarders, device
 * profiles (a codec and its point map) and the devices (OTAA or ABP, class A, EU868).
 * See README.md for a commented sample.
 */
import { z } from "zod";
import {
  deviceBase,
  driverBase,
  duration,
  intRange,
  pointBase,
  topicSegment,
} from "../../config/common.js";

function hexOf(bytes: number, what: string) {
  const msg = `expected ${what}: ${bytes * 2} hexadecimal digits, most significant first (e.g. ${"0123456789abcdef".repeat(4).slice(0, bytes * 2)})`;
  return z
    .string({ error: msg })
    .regex(new RegExp(`^[0-9A-Fa-f]{${bytes * 2}}$`), { error: msg })
    .transform((s) => s.toLowerCase());
}

export const eui = (what: string) => hexOf(8, what);
export const aesKey = (what: string) => hexOf(16, what);

export const lorawanPointSchema = z.strictObject({
  ...pointBase,
  field: z
    .string()
    .regex(/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*|\.\d+)*$/, {
      error: 'expected a field path in the codec\'s `data`, e.g. "co2" or "meter.volume"',
    })
    .optional()
    .describe(
      "Path of the value in the codec's decoded `data` (dots for nesting); default: the point id. For a writable point, the key given to encodeDownlink.",
    ),
  scale: z.number().default(1).describe("value = decoded × scale + offset (numbers only)."),
  offset: z.number().default(0),
});

const codecRef = z
  .string()
  .regex(/^([a-z0-9][a-z0-9_-]{0,63}|\/.+\.js)$/, {
    error:
      'expected a built-in codec name (drivers/lorawan/codecs/<name>.js, e.g. "dragino-swm") or an absolute path to a .js codec file',
  })
  .describe("TTN/ChirpStack-compatible JavaScript codec (decodeUplink / encodeDownlink).");

export const lorawanProfileSchema = z.strictObject({
  codec: codecRef,
  description: z.string().optional(),
  points: z.array(lorawanPointSchema).default([]),
});

const otaa = z.strictObject({
  type: z.literal("otaa"),
  join_eui: eui("a JoinEUI (AppEUI)"),
  app_key: aesKey("an AppKey (128-bit AES key)"),
});
const abp = z.strictObject({
  type: z.literal("abp"),
  dev_addr: hexOf(4, "a DevAddr"),
  nwk_s_key: aesKey("a NwkSKey (128-bit AES key)"),
  app_s_key: aesKey("an AppSKey (128-bit AES key)"),
});

const gatewayEntry = z.strictObject({
  eui: eui("a gateway EUI"),
  address: z
    .union([z.ipv4(), z.ipv6()], { error: "expected an IPv4 or IPv6 address, e.g. 127.0.0.1" })
    .optional()
    .describe(
      "Pin the concentrator to this source address: its EUI from anywhere else is dropped.",
    ),
  name: z.string().max(80).optional(),
});

/** True for 127.0.0.0/8, ::1 and localhost (the concentrator in the box). */
export function isLoopback(host: string): boolean {
  return (
    /^127\./.test(host) || host === "::1" || host === "localhost" || host === "::ffff:127.0.0.1"
  );
}

export const lorawanDeviceSchema = z.strictObject({
  ...deviceBase,
  dev_eui: eui("a DevEUI"),
  activation: z.discriminatedUnion("type", [otaa, abp], {
    error:
      'expected activation.type "otaa" (join_eui, app_key) or "abp" (dev_addr, nwk_s_key, app_s_key)',
  }),
  class: z
    .literal("A", { error: 'expected class "A" (classes B and C are not supported)' })
    .default("A"),
  profile: topicSegment
    .optional()
    .describe("Name of a profile in this driver's `profiles` (codec + points)."),
  codec: codecRef
    .optional()
    .describe("Codec for this device alone (instead of, or overriding, the profile's)."),
  points: z
    .array(lorawanPointSchema)
    .default([])
    .describe("Points added to (or overriding, by id) the profile's."),
  link_points: z
    .boolean()
    .default(true)
    .describe(
      "Also report the best gateway's rssi (dBm) and snr (dB) of each uplink as points `rssi` and `snr`.",
    ),
});

export const lorawanDriverSchema = z
  .strictObject({
    ...driverBase,
    driver: z.literal("lorawan"),
    listen: z
      .strictObject({
        host: z
          .string()
          .min(1)
          .default("127.0.0.1")
          .describe(
            "Address the packet forwarders send to. Loopback by default (the concentrator in the box); a concentrator elsewhere needs 0.0.0.0 (or the box's LAN address) and its EUI in gateways.allow.",
          ),
        port: intRange(0, 65535)
          .default(1700)
          .describe("UDP port (Semtech default 1700; 0 picks a free port, for tests)."),
      })
      .prefault({})
      .describe("UDP listener for Semtech packet forwarders (protocol v1/v2)."),
    gateways: z
      .strictObject({
        allow: z
          .array(
            z.union([eui("a gateway EUI"), gatewayEntry], {
              error:
                'expected a gateway EUI (16 hexadecimal digits) or { eui, address, name } with address an IPv4 or IPv6 address, e.g. { eui: aa555a0000000000, address: "127.0.0.1" }',
            }),
          )
          .default([])
          .describe(
            "Registered concentrators (as ChirpStack and TTN require): only these EUIs are served; datagrams from others are counted per source address and dropped. Empty: any EUI, up to `max`, and only on a loopback listener.",
          ),
        max: intRange(1, 64)
          .default(16)
          .describe("Concentrators kept in the table; more are refused (counted, one event)."),
        rebind_after: duration
          .prefault("2m")
          .describe(
            "A concentrator is bound to the IP address it first speaks from: datagrams with its EUI from another address are dropped, until its own address has been silent this long (a concentrator that moved). An `address` in gateways.allow never moves.",
          ),
      })
      .prefault({})
      .describe("Which packet forwarders are served, and from where."),
    event_interval: duration
      .prefault("1m")
      .describe(
        "Security events of one cause and device (wrong MICs, replays, refused concentrators) are raised once, then summed up (with their count) at most once per this interval.",
      ),
    net_id: hexOf(3, "a NetID")
      .refine((s) => parseInt(s, 16) <= 0x3f, {
        error: "expected a type-0 NetID 000000..00003F (other NetID types are not supported)",
      })
      .default("000000")
      .describe(
        "NetID given to OTAA devices (type 0: 000000-00003F; 000000/000001 are for private networks). OTAA DevAddrs get its NwkID in their top bits.",
      ),
    extra_channels: z
      .array(
        z
          .number({ error: "expected a frequency in MHz, e.g. 867.1" })
          .min(863, { error: "expected an EU868 frequency 863..870 MHz" })
          .max(870, { error: "expected an EU868 frequency 863..870 MHz" })
          .refine((f) => Math.abs(f * 10_000 - Math.round(f * 10_000)) < 1e-6, {
            error: "expected a frequency in steps of 100 Hz (e.g. 867.1)",
          }),
      )
      .max(5, { error: "a Join Accept's CFList holds at most 5 extra channels" })
      .default([])
      .describe(
        "EU868 channels (MHz) given to OTAA devices in the Join Accept's CFList, beyond the three default ones (868.1, 868.3, 868.5). The concentrator must listen on them too; TTN's plan: [867.1, 867.3, 867.5, 867.7, 867.9].",
      ),
    dedup_window: duration
      .prefault("200ms")
      .describe(
        "How long to wait for copies of a frame from other concentrators; the best signal wins.",
      ),
    rx1_delay_s: intRange(1, 15)
      .default(1)
      .describe("RX1 delay in seconds (RECEIVE_DELAY1, EU868 default 1); RX2 is one second later."),
    rx2_frequency: z
      .number()
      .min(863)
      .max(870)
      .default(869.525)
      .describe("RX2 frequency in MHz (EU868: 869.525)."),
    rx2_dr: intRange(0, 5).default(0).describe("RX2 data rate (EU868 DR0 = SF12BW125)."),
    tx_power: intRange(0, 27)
      .default(14)
      .describe("Downlink power in dBm (EIRP; EU868 allows 14 in RX1, 27 at 869.525)."),
    codec_timeout: duration
      .prefault("100ms")
      .describe("Time limit of one codec call (as ChirpStack's 100 ms)."),
    codec_memory_mb: intRange(4, 256)
      .default(32)
      .describe("Memory limit of each codec sandbox in MiB."),
    codec_workers: intRange(1, 8)
      .default(2)
      .describe(
        "Worker threads shared by all codecs (~12 MiB each); a codec that hits its time or memory limit gets one of its own.",
      ),
    max_queue: intRange(1, 64)
      .default(8)
      .describe("Downlinks queued per device; more are refused."),
    confirmed_retries: intRange(0, 8)
      .default(2)
      .describe("Resends of a confirmed downlink that the device did not acknowledge."),
    profiles: z
      .record(topicSegment, lorawanProfileSchema)
      .default({})
      .describe("Device profiles: a codec and its point map, shared by devices."),
    devices: z.array(lorawanDeviceSchema).default([]),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.gateways.allow.length === 0 && !isLoopback(cfg.listen.host))
      ctx.addIssue({
        code: "custom",
        path: ["gateways", "allow"],
        message: `listen.host ${cfg.listen.host} accepts packet forwarders from the network, which the Semtech UDP protocol does not authenticate: list the concentrators' EUIs in gateways.allow, or listen on 127.0.0.1 when the concentrator is in the box`,
      });
    const gws = new Set<string>();
    cfg.gateways.allow.forEach((g, i) => {
      const e = typeof g === "string" ? g : g.eui;
      if (gws.has(e))
        ctx.addIssue({
          code: "custom",
          path: ["gateways", "allow", i],
          message: `gateway ${e} is listed twice`,
        });
      gws.add(e);
    });
    const euis = new Map<string, number>();
    cfg.devices.forEach((d, i) => {
      const here = ["devices", i];
      if (d.id.startsWith("gw-"))
        ctx.addIssue({
          code: "custom",
          path: [...here, "id"],
          message:
            'device ids starting with "gw-" are reserved for the concentrators\' own readings; rename the device',
        });
      const prev = euis.get(d.dev_eui);
      if (prev !== undefined)
        ctx.addIssue({
          code: "custom",
          path: [...here, "dev_eui"],
          message: `dev_eui ${d.dev_eui} is already used by devices[${prev}]`,
        });
      else euis.set(d.dev_eui, i);
      if (d.profile !== undefined && !(d.profile in cfg.profiles)) {
        const known = Object.keys(cfg.profiles);
        ctx.addIssue({
          code: "custom",
          path: [...here, "profile"],
          message: `unknown profile "${d.profile}"; ${known.length ? `known: ${known.join(", ")}` : "declare it under profiles"}`,
        });
      }
      if (d.profile === undefined && d.codec === undefined)
        ctx.addIssue({
          code: "custom",
          path: [...here, "codec"],
          message: "a device needs a codec: set `profile` (a profile of this driver) or `codec`",
        });
      const ids = new Set<string>();
      d.points.forEach((p, j) => {
        if (p.id === "reset_frame_counters")
          ctx.addIssue({
            code: "custom",
            path: [...here, "points", j, "id"],
            message: `point id "${p.id}" is reserved by the driver (ABP counter reset); rename the point`,
          });
        if (ids.has(p.id))
          ctx.addIssue({
            code: "custom",
            path: [...here, "points", j, "id"],
            message: `duplicate point id "${p.id}"`,
          });
        ids.add(p.id);
      });
    });
  });

export type LorawanDriverConfig = z.infer<typeof lorawanDriverSchema>;
export type LorawanDeviceConfig = z.infer<typeof lorawanDeviceSchema>;
export type LorawanPointConfig = z.infer<typeof lorawanPointSchema>;
export type LorawanProfileConfig = z.infer<typeof lorawanProfileSchema>;
