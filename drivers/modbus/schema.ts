/**
 * Config block of the Modbus driver. Addresses are 0-based register offsets (the number on the
 * wire), never the "4x0001"/"40001" reference numbers of some datasheets: see README.md.
 *
 * A device's point map comes from its `points`, from a shipped or local profile
 * (`profile: eastron-sdm630`), or both (device points override profile points with the same id).
 * Profiles are read and validated here, at config-validation time, so `eclor-edge config
 * validate` reports a missing or broken profile with its file path.
 */
import { z } from "zod";
import { deviceBase, driverBase, duration, intRange } from "../../config/common.js";
import { byteOrder, isBitTable, modbusPointSchema, registerCount } from "./point-schema.js";
import { loadProfile } from "./profiles.js";

export * from "./point-schema.js";

export const modbusDeviceSchema = z
  .strictObject({
    ...deviceBase,
    unit_id: intRange(0, 255).describe(
      "Modbus unit (slave) id; 0 is broadcast on RTU (writes only).",
    ),
    profile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Device profile providing the point map: a shipped name (drivers/modbus/profiles/<name>.yaml) or an absolute path to a YAML file.",
      ),
    profile_counts: z
      .record(z.string(), intRange(0, 1024))
      .optional()
      .describe(
        "How many instances of each profile array to use, e.g. { lamps: 12 } on a DALI gateway.",
      ),
    host: z
      .string()
      .min(1)
      .optional()
      .describe("TCP only: this device's own host (default: the transport's)."),
    port: intRange(1, 65535)
      .optional()
      .describe("TCP only: this device's own port (default: the transport's)."),
    poll_interval: duration.optional().describe("Default: the driver's poll_interval."),
    write_multiple: z
      .boolean()
      .default(false)
      .describe(
        "Write single coils/registers with FC 15/16 instead of FC 5/6 (for devices that only implement the 'multiple' functions).",
      ),
    byte_order: byteOrder
      .optional()
      .describe(
        "Default order of multi-register values; default: the profile's, else the driver's.",
      ),
    max_gap: intRange(0, 124)
      .optional()
      .describe(
        "Largest run of unmapped registers a coalesced read may span; 0 for devices that refuse reads across unmapped registers.",
      ),
    max_registers: intRange(1, 125)
      .optional()
      .describe(
        "Most registers per read for this device; default: the profile's, else the driver's max_registers.",
      ),
    points: z.array(modbusPointSchema).default([]),
  })
  .transform((dev, ctx) => {
    let points = dev.points;
    let byte_order = dev.byte_order;
    let max_gap = dev.max_gap;
    let max_registers = dev.max_registers;
    if (dev.profile !== undefined) {
      const res = loadProfile(dev.profile, dev.profile_counts ?? {});
      if (!res.ok) {
        for (const message of res.problems)
          ctx.addIssue({ code: "custom", path: ["profile"], message, input: dev.profile });
        return z.NEVER;
      }
      const own = new Set(points.map((p) => p.id));
      points = [...res.points.filter((p) => !own.has(p.id)), ...points];
      byte_order ??= res.profile.byte_order;
      max_gap ??= res.profile.max_gap;
      max_registers ??= res.profile.max_registers;
    } else if (dev.profile_counts) {
      ctx.addIssue({
        code: "custom",
        path: ["profile_counts"],
        message: "profile_counts needs a profile",
      });
    }
    const seen = new Map<string, number>();
    dev.points.forEach((p, i) => {
      if (seen.has(p.id))
        ctx.addIssue({
          code: "custom",
          path: ["points", i, "id"],
          message: `duplicate point id "${p.id}" (also points[${seen.get(p.id)}])`,
        });
      seen.set(p.id, i);
    });
    // A device without points is accepted (kept in the file while its map is being written);
    // the driver does not poll it.
    return { ...dev, points, byte_order, max_gap, max_registers };
  });

const tcp = z.strictObject({
  type: z.literal("tcp"),
  host: z.string().min(1),
  port: intRange(1, 65535).default(502),
  concurrency: intRange(1, 16)
    .default(1)
    .describe(
      "Transactions in flight per connection (1 is what most devices and gateways support).",
    ),
});
const rtu = z.strictObject({
  type: z.literal("rtu"),
  path: z.string().min(1).describe("Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…"),
  baud: z.number().int().positive().default(9600),
  parity: z.enum(["none", "even", "odd"]).default("none"),
  data_bits: z.union([z.literal(7), z.literal(8)]).default(8),
  stop_bits: z.union([z.literal(1), z.literal(2)]).default(1),
  frame_delay_ms: z
    .number()
    .min(0)
    .optional()
    .describe(
      "Silent interval between frames; default 3.5 character times (1.75 ms above 19200 baud).",
    ),
  turnaround_ms: z
    .number()
    .min(0)
    .default(100)
    .describe("Delay after a broadcast before the next request."),
});
const rtuOverTcp = z.strictObject({
  type: z.literal("rtu_over_tcp"),
  host: z.string().min(1),
  port: intRange(1, 65535),
  frame_delay_ms: z
    .number()
    .min(0)
    .default(0)
    .describe("Silent interval between requests (for slow serial servers)."),
});

export const modbusDriverSchema = z
  .strictObject({
    ...driverBase,
    driver: z.literal("modbus"),
    transport: z.discriminatedUnion("type", [tcp, rtu, rtuOverTcp]),
    timeout_ms: intRange(10, 60_000)
      .default(1000)
      .describe("Answer timeout of one transaction (ms)."),
    retries: intRange(0, 10)
      .default(1)
      .describe("Retries of a transaction after a timeout or a frame error."),
    reconnect_after_timeouts: intRange(0, 100)
      .default(3)
      .describe(
        "TCP and RTU over TCP: drop and reopen the connection after this many timeouts in a row (a session that stopped answering); 0: never. Framing errors always reconnect.",
      ),
    busy_retries: intRange(0, 10)
      .default(3)
      .describe("Retries of a transaction answered with exception 6 (server device busy)."),
    busy_backoff: duration
      .prefault("100ms")
      .describe("Wait before the first busy retry; doubled at each further one."),
    offline_after: intRange(1, 100)
      .default(3)
      .describe("Consecutive failed polls before a device is declared offline."),
    backoff_max: duration
      .prefault("5m")
      .describe("Longest wait between attempts to reach an offline device."),
    poll_interval: duration.prefault("10s"),
    byte_order: byteOrder.default("ABCD"),
    max_gap: intRange(0, 124).default(16),
    max_registers: intRange(1, 125).default(125),
    max_bits: intRange(1, 2000).default(2000),
    devices: z.array(modbusDeviceSchema).default([]),
  })
  .superRefine((d, ctx) => {
    d.devices.forEach((dev, i) => {
      if (d.transport.type !== "tcp" && (dev.host !== undefined || dev.port !== undefined))
        ctx.addIssue({
          code: "custom",
          path: ["devices", i, dev.host !== undefined ? "host" : "port"],
          message: `host/port per device only exist on a tcp transport; this bus is ${d.transport.type}`,
        });
      dev.points.forEach((p, j) => {
        const size = p.type === "string" ? (p.length ?? 1) : registerCount[p.type];
        const limit = dev.max_registers ?? d.max_registers;
        if (!isBitTable(p.table) && size > limit)
          ctx.addIssue({
            code: "custom",
            path: ["devices", i, "points", j, "type"],
            message: `a ${p.type} spans ${size} registers but max_registers is ${limit}: it could never be read`,
          });
      });
      if (d.transport.type !== "tcp" && dev.unit_id > 247)
        ctx.addIssue({
          code: "custom",
          path: ["devices", i, "unit_id"],
          message: `unit ${dev.unit_id} is outside 1..247, the addresses of Modbus over a serial line (Modbus over Serial Line V1.02 §2.2; 248..255 are reserved); on ${d.transport.type} use 1..247 (0 for a broadcast write)`,
        });
      if (d.transport.type === "rtu" && dev.unit_id === 0 && dev.points.some((p) => !p.writable))
        ctx.addIssue({
          code: "custom",
          path: ["devices", i, "unit_id"],
          message:
            "unit 0 is the RTU broadcast address: nothing answers it, so it cannot be polled (use 1..247)",
        });
    });
  });

export type ModbusDriverConfig = z.output<typeof modbusDriverSchema>;
export type ModbusDeviceConfig = z.output<typeof modbusDeviceSchema>;
