/**
 * Benchmark: the packet-forwarder port under a flood (issue 14.4). 100,000 PUSH_DATA datagrams
 * with random gateway EUIs (each with a `stat` report, as the attack of the issue: 20,000 made
 * 106,400 fake readings and RSS 89→224 MB) are sent to a driver with an EUI allow-list, while one
 * registered concentrator keeps sending a real device's uplinks. Figures: peak RSS growth over the
 * same process's idle RSS (the reference), datagrams handled per second, readings and events
 * produced by the flood (goal: none, and at most a few events), and whether the real device's
 * uplinks were all decoded meanwhile. Goal: RSS growth ≤ 30 MB.
 */
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { pino } from "pino";
import type { DriverState, Reading } from "../drivers/driver.js";
import { createLorawanDriver } from "../drivers/lorawan/index.js";
import { buildDataUp } from "../drivers/lorawan/lora.js";
import { lorawanDriverSchema } from "../drivers/lorawan/schema.js";
import { build } from "../drivers/lorawan/semtech.js";

const FLOOD = 100_000;
const BATCH = 200;
const REAL = "aa555a0000000001";
const MB = 1e6;
const dev = {
  devAddr: Buffer.from("26011bda", "hex"),
  nwk: Buffer.from("44024241ed4ce9a68c6a8bc055233fd3", "hex"),
  app: Buffer.from("ec925802ae430ca77fd3dd73cb2cc588", "hex"),
};

/** In-memory durable state (the store's KV is measured by lorawan-uplink). */
class MemState implements DriverState {
  private readonly m = new Map<string, string>();
  get<T>(k: string): T | undefined {
    const v = this.m.get(k);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  set(k: string, v: unknown): void {
    this.m.set(k, JSON.stringify(v));
  }
  delete(k: string): void {
    this.m.delete(k);
  }
  keys(prefix = ""): string[] {
    return [...this.m.keys()].filter((k) => k.startsWith(prefix));
  }
}

const readings: Reading[] = [];
const events: string[] = [];
const driver = createLorawanDriver(
  lorawanDriverSchema.parse({
    id: "lora",
    driver: "lorawan",
    listen: { host: "127.0.0.1", port: 0 },
    gateways: { allow: [REAL] },
    dedup_window: "0ms",
    profiles: { co2: { codec: "milesight-am103", points: [{ id: "co2", unit: "ppm" }] } },
    devices: [
      {
        id: "co2",
        dev_eui: "0004a30b001c0531",
        profile: "co2",
        link_points: false,
        activation: {
          type: "abp",
          dev_addr: dev.devAddr.toString("hex"),
          nwk_s_key: dev.nwk.toString("hex"),
          app_s_key: dev.app.toString("hex"),
        },
      },
    ],
  }),
  {
    logger: pino({ level: "silent" }),
    emit: (r) => readings.push(...r),
    event: (e) => events.push(e.type),
    state: new MemState(),
  },
);
await driver.start();
const port = driver.port();
const attacker = createSocket("udp4");
const real = createSocket("udp4");
await Promise.all(
  [attacker, real].map((s) => new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()))),
);
const stat = { time: "2026-01-01 00:00:00 GMT", rxnb: 9, rxok: 9, rxfw: 9, ackr: 100, dwnb: 0 };
const uplink = (fCnt: number) => {
  const phy = buildDataUp(
    {
      devAddr: dev.devAddr,
      fCnt32: fCnt,
      confirmed: false,
      fPort: 85,
      payload: Buffer.from([0x07, 0x7d, fCnt & 0xff, 0x01]),
    },
    dev.app,
    dev.nwk,
  );
  const rxpk = {
    tmst: fCnt * 1000,
    freq: 868.1,
    stat: 1,
    modu: "LORA",
    datr: "SF7BW125",
    codr: "4/5",
    rssi: -80,
    lsnr: 8,
    size: phy.length,
    data: phy.toString("base64"),
  };
  real.send(build.pushData(2, fCnt & 0xffff, REAL, { rxpk: [rxpk] }), port, "127.0.0.1");
};

// Built before the idle RSS is taken: the sender's own buffers are not the driver's memory.
const POOL = 5000;
const forged = Array.from({ length: POOL }, (_, j) =>
  build.pushData(2, j & 0xffff, randomBytes(8).toString("hex"), { stat }),
);
const settle = () => new Promise((r) => setTimeout(r, 300));
// A full GC before each measurement, so garbage not yet collected is not counted as growth.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
// The codec worker starts with the first uplink: start it before the idle figure is taken.
let realSent = 0;
uplink(realSent++);
while (readings.length < 1) await settle();
await settle();
gc();
const idle = process.memoryUsage().rss;
const idleHeap = process.memoryUsage().heapUsed;
let peak = idle;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const counters = () => driver.status().counters!;
const t0 = performance.now();
for (let i = 0; i < FLOOD; i += BATCH) {
  for (let j = i; j < i + BATCH; j++) attacker.send(forged[j % POOL]!, port, "127.0.0.1");
  if ((i / BATCH) % 10 === 0) uplink(realSent++);
  // As fast as the driver reads (at most 100 ms per batch): the figure is the driver's rate and
  // memory, not the kernel dropping what overflows its socket buffer.
  const target = i + BATCH + realSent;
  const until = Date.now() + 100;
  while (counters().datagrams! < target - BATCH / 4 && Date.now() < until)
    await new Promise((r) => setTimeout(r, 1));
}
const handled = counters().datagrams!;
const seconds = (performance.now() - t0) / 1000;
const deadline = Date.now() + 10_000;
while (readings.length < realSent && Date.now() < deadline) await settle();
clearInterval(sampler);
const c = counters();
gc();
await settle();
const after = process.memoryUsage();
const status = JSON.stringify(driver.status()).length;
attacker.close();
real.close();
await driver.stop();
const growth = (peak - idle) / MB;
process.stdout.write(
  `${JSON.stringify({
    bench: "lorawan-flood",
    flood_datagrams: FLOOD,
    handled_datagrams: handled,
    datagrams_per_s: Math.round(handled / seconds),
    refused_unknown_eui: c.gateway_unknown,
    rss_peak_growth_mb: Number(growth.toFixed(1)),
    after_flood_gc: {
      rss_growth_mb: Number(((after.rss - idle) / MB).toFixed(1)),
      heap_growth_mb: Number(((after.heapUsed - idleHeap) / MB).toFixed(1)),
    },
    reference: {
      what: "idle RSS of the same process before the flood",
      rss_mb: Number((idle / MB).toFixed(1)),
    },
    flood_readings: readings.filter((r) => r.device !== "co2").length,
    events: events.length,
    status_json_bytes: status,
    real_uplinks: { sent: realSent, decoded: readings.filter((r) => r.device === "co2").length },
    goal: { rss_peak_growth_mb: 30, flood_readings: 0 },
    pass: growth <= 30 && readings.every((r) => r.device === "co2"),
  })}\n`,
);
