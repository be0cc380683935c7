/**
 * `eclor-edge sim lorawan`: concentrators (Semtech UDP packet forwarders) and end devices that
 * join over the air and report periodically, against a running agent. Device identities and keys
 * are derived from a seed so `--print-config` gives the matching driver block.
 */
import { createHash } from "node:crypto";
import { stringify } from "yaml";
import { SimDevice, SimRadio, type ReceivedDownlink } from "./device.js";
import { SimForwarder } from "./forwarder.js";
import { CODEC_OF, POINTS_OF, payloadFor, type SimKind } from "./payloads.js";

interface SimRunOptions {
  server: { host: string; port: number };
  gateways: number;
  intervalMs: number;
  count?: number;
  abp: boolean;
  /** Derives the concentrators' EUIs (and the devices' identities, when not given). */
  seed: string;
  version: 1 | 2;
  confirmed: boolean;
  log: (line: Record<string, unknown>) => void;
}

/** How many devices of which kinds, their identities derived from the seed. */
export interface SeededFleet {
  devices: number;
  kinds: SimKind[];
  seed: string;
}

/** The devices: derived from the seed, or given (e.g. read from an agent's config). */
export type LorawanSimOptions = SimRunOptions & (SeededFleet | { identities: SimIdentity[] });

export interface SimIdentity {
  id: string;
  kind: SimKind;
  devEui: string;
  joinEui: string;
  appKey: string;
  devAddr: string;
  nwkSKey: string;
  appSKey: string;
}

const hash = (s: string) => createHash("sha256").update(s).digest("hex");

export function identities(o: SeededFleet): SimIdentity[] {
  return Array.from({ length: o.devices }, (_, i) => {
    const kind = o.kinds[i % o.kinds.length]!;
    const h = hash(`${o.seed}/${i}`);
    return {
      id: `sim-${kind}-${i + 1}`,
      kind,
      devEui: `70b3d5e75e${h.slice(0, 6)}`,
      joinEui: "70b3d5e75e000000",
      appKey: h.slice(6, 38),
      // ABP addresses in the NwkID 0 range, like OTAA ones with net_id 000000.
      devAddr: `00${h.slice(38, 44)}`,
      nwkSKey: hash(`${o.seed}/${i}/nwk`).slice(0, 32),
      appSKey: hash(`${o.seed}/${i}/app`).slice(0, 32),
    };
  });
}

/** The `drivers:` entry an agent needs to decode these simulated devices. */
export function driverBlock(o: SeededFleet & { abp: boolean; port: number }): string {
  const ids = identities(o);
  const kinds = [...new Set(ids.map((d) => d.kind))];
  const block = {
    id: "lorawan",
    driver: "lorawan",
    // The concentrators of this simulator run on this host: loopback (README, "Concentrators").
    listen: { host: "127.0.0.1", port: o.port },
    profiles: Object.fromEntries(
      kinds.map((k) => [
        `sim-${k}`,
        {
          codec: CODEC_OF[k],
          points: [
            ...POINTS_OF[k],
            ...(k === "co2"
              ? [{ id: "report_interval", unit: "s", writable: true, min: 60, max: 64800 }]
              : []),
          ],
        },
      ]),
    ),
    devices: ids.map((d) => ({
      id: d.id,
      dev_eui: d.devEui,
      profile: `sim-${d.kind}`,
      activation: o.abp
        ? { type: "abp", dev_addr: d.devAddr, nwk_s_key: d.nwkSKey, app_s_key: d.appSKey }
        : { type: "otaa", join_eui: d.joinEui, app_key: d.appKey },
    })),
  };
  return stringify({ drivers: [block] });
}

export function runLorawanSim(o: LorawanSimOptions): {
  done: Promise<void>;
  stop(): Promise<void>;
} {
  let stopped = false;
  const fleet = "identities" in o ? o.identities : identities(o);
  const radio = new SimRadio();
  const forwarders: SimForwarder[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(() => {
        timers.delete(t);
        r();
      }, ms);
      timers.add(t);
    });
  const show = (d: ReceivedDownlink) => ({
    window: d.window,
    fPort: d.fPort,
    payload: d.payload.toString("hex"),
    confirmed: d.confirmed,
    ack: d.ack,
    fPending: d.fPending,
    mac: d.mac.map((m) => m.name),
  });

  async function runDevice(idx: number, id: SimIdentity): Promise<void> {
    const dev = new SimDevice(
      o.abp
        ? { devEui: id.devEui, devAddr: id.devAddr, nwkSKey: id.nwkSKey, appSKey: id.appSKey }
        : { devEui: id.devEui, joinEui: id.joinEui, appKey: id.appKey },
      radio,
      { devNonce: Math.floor(Math.random() * 0xffff) },
    );
    // Spread the devices over the interval, as real ones are.
    await sleep(Math.floor((idx * o.intervalMs) / Math.max(1, fleet.length)) % o.intervalMs);
    while (!stopped && !dev.joined) {
      o.log({ device: id.id, event: "join_request", devEui: id.devEui });
      if (await dev.join())
        o.log({ device: id.id, event: "joined", devAddr: dev.devAddr!.toString("hex") });
      else {
        o.log({ device: id.id, event: "join_failed", retry_in_ms: 10_000 });
        await sleep(10_000);
      }
    }
    for (let n = 0; !stopped && (o.count === undefined || n < o.count); n++) {
      const payload = payloadFor(id.kind, n, idx);
      const dl = await dev.uplink(85, payload, { confirmed: o.confirmed });
      o.log({
        device: id.id,
        event: "uplink",
        fCnt: dev.fCntUp - 1,
        payload: payload.toString("hex"),
        ...(dl ? { downlink: show(dl) } : {}),
      });
      if (o.count === undefined || n + 1 < o.count) await sleep(o.intervalMs);
    }
  }

  const done = (async () => {
    for (let i = 0; i < o.gateways; i++) {
      const fw = new SimForwarder({
        server: o.server,
        gatewayEui: `aa555a${hash(`${o.seed}/gw/${i}`).slice(0, 10)}`,
        version: o.version,
        onAir: radio.air,
      });
      await fw.start();
      forwarders.push(fw);
      radio.forwarders.push(fw);
      o.log({
        event: "concentrator_connected",
        gateway: fw.eui,
        server: `${o.server.host}:${o.server.port}`,
      });
    }
    await Promise.all(fleet.map((id, i) => runDevice(i, id)));
  })();

  return {
    done: done.finally(async () => {
      for (const t of timers) clearTimeout(t);
      await Promise.all(forwarders.map((f) => f.stop()));
    }),
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(forwarders.map((f) => f.stop()));
    },
  };
}
