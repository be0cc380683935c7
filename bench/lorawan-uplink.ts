/**
 * Benchmark: LoRaWAN uplinks/s from UDP datagram to decoded readings committed in the store —
 * PUSH_DATA parsing and ACK, deduplication, MIC with the 32-bit counter, decryption, session and
 * counter persistence (the store's durable KV), the QuickJS codec (milesight-am103) in its worker,
 * and group-committed readings (co2, temperature, humidity, battery, rssi, snr per uplink) —
 * next to the reference measured in the same run: bare lora-packet parse + MIC + decrypt of the
 * same frames, in a tight loop. Goal (issue 5): at least 2,000 uplinks/s end to end.
 */
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pino } from "pino";
import { Store } from "../agent/store/store.js";
import { configSchema } from "../config/schema.js";
import { createLorawanDriver } from "../drivers/lorawan/index.js";
import { buildDataUp, fCntMsb, fullFCnt, lora } from "../drivers/lorawan/lora.js";
import { lorawanDriverSchema } from "../drivers/lorawan/schema.js";
import { build } from "../drivers/lorawan/semtech.js";

const DEVICES = 50;
const N = 16_000;
/** Datagrams in flight (sent, PUSH_ACK not yet received): a concentrator does not flood either. */
const WINDOW = 128;
const ROUNDS = 2;
const GW = "aa555a0000000001";

const key = (i: number, salt: number) =>
  Buffer.from(
    `${salt.toString(16).padStart(2, "0")}${i.toString(16).padStart(6, "0")}`.repeat(4),
    "hex",
  );
const devices = Array.from({ length: DEVICES }, (_, i) => ({
  id: `co2-${i}`,
  devEui: `70b3d5000000${i.toString(16).padStart(4, "0")}`,
  devAddr: Buffer.from(`2601${i.toString(16).padStart(4, "0")}`, "hex"),
  nwk: key(i, 1),
  app: key(i, 2),
}));

// One AM103 payload per uplink, counters increasing per device; built before any clock starts.
const frames: Buffer[] = [];
for (let n = 0; n < N; n++) {
  const d = devices[n % DEVICES]!;
  const fCnt = Math.floor(n / DEVICES);
  const co2 = 400 + (n % 1600);
  const payload = Buffer.from([
    0x01,
    0x75,
    90,
    0x03,
    0x67,
    0x18,
    0x01,
    0x04,
    0x68,
    0x6d,
    0x07,
    0x7d,
    co2 & 0xff,
    co2 >> 8,
  ]);
  frames.push(
    buildDataUp(
      { devAddr: d.devAddr, fCnt32: fCnt, confirmed: false, fPort: 85, payload },
      d.app,
      d.nwk,
    ),
  );
}

function reference(): number {
  const byAddr = new Map(devices.map((d) => [d.devAddr.toString("hex"), d]));
  const t0 = performance.now();
  let ok = 0;
  for (let n = 0; n < N; n++) {
    const p = lora.fromWire(frames[n]!);
    const d = byAddr.get(p.DevAddr!.toString("hex"))!;
    const msb = fCntMsb(fullFCnt(Math.floor(n / DEVICES), p.getFCnt()!));
    if (
      lora.verifyMIC(p, d.nwk, undefined, msb) &&
      lora.decrypt(p, d.app, d.nwk, msb).length === 14
    )
      ok++;
  }
  if (ok !== N) throw new Error(`reference decoded ${ok}/${N}`);
  return N / ((performance.now() - t0) / 1000);
}

async function endToEnd(
  dir: string,
  round: number,
): Promise<{ rate: number; readings: number; counters: Record<string, number> }> {
  const defaults = configSchema.parse({
    version: 1,
    gateway: { id: "bench" },
    uplink: { url: "mqtt://127.0.0.1:1" },
  }).store;
  const store = new Store({
    ...defaults,
    path: join(dir, `store-${round}.db`),
    logger: pino({ level: "silent" }),
  }).open();
  const cfg = lorawanDriverSchema.parse({
    id: "lora",
    driver: "lorawan",
    listen: { host: "127.0.0.1", port: 0 },
    profiles: {
      co2: {
        codec: "milesight-am103",
        points: [
          { id: "co2", unit: "ppm" },
          { id: "temperature", unit: "Cel" },
          { id: "humidity", unit: "%RH" },
          { id: "battery", unit: "%" },
        ],
      },
    },
    devices: devices.map((d) => ({
      id: d.id,
      dev_eui: d.devEui,
      profile: "co2",
      activation: {
        type: "abp",
        dev_addr: d.devAddr.toString("hex"),
        nwk_s_key: d.nwk.toString("hex"),
        app_s_key: d.app.toString("hex"),
      },
    })),
  });
  const driver = createLorawanDriver(cfg, {
    logger: pino({ level: "silent" }),
    emit: (r) => store.appendReadings(r),
    event: (e) => store.appendEvent(e),
    state: store.kv("lora"),
  });
  await driver.start();
  const expected = N * 6;
  let stored = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  store.onStored((recs) => {
    stored += recs.length;
    if (stored >= expected) done();
  });
  // Warm the codec worker (start-up is not throughput).
  await driver.encodeCommand("co2-0", "co2", 1).catch(() => undefined);

  const sock = createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  let acked = 0;
  let next = 0;
  const port = driver.port();
  const datagrams = frames.map((phy, n) =>
    build.pushData(2, n & 0xffff, GW, {
      rxpk: [
        {
          tmst: n * 1000,
          freq: 868.1,
          chan: 0,
          rfch: 0,
          stat: 1,
          modu: "LORA",
          datr: "SF7BW125",
          codr: "4/5",
          rssi: -80,
          lsnr: 8.5,
          size: phy.length,
          data: phy.toString("base64"),
        },
      ],
    }),
  );
  const pump = () => {
    while (next < N && next - acked < WINDOW) sock.send(datagrams[next++]!, port, "127.0.0.1");
  };
  sock.on("message", () => {
    acked++;
    pump();
  });
  const t0 = performance.now();
  pump();
  const timeout = setTimeout(() => done(), 60_000);
  await finished;
  clearTimeout(timeout);
  const s = (performance.now() - t0) / 1000;
  const counters = driver.status().counters ?? {};
  sock.close();
  await driver.stop();
  store.close();
  if (stored < expected)
    throw new Error(
      `only ${stored}/${expected} readings stored (lost datagrams?) counters=${JSON.stringify(counters)}`,
    );
  return { rate: N / s, readings: stored, counters };
}

const dir = mkdtempSync(join(tmpdir(), "eclor-bench-lorawan-"));
try {
  const ours: number[] = [];
  const refs: number[] = [];
  let last: Awaited<ReturnType<typeof endToEnd>> | undefined;
  for (let r = 0; r < ROUNDS; r++) {
    refs.push(reference());
    last = await endToEnd(dir, r);
    ours.push(last.rate);
  }
  const rate = Math.max(...ours);
  const ref = Math.max(...refs);
  process.stdout.write(
    `${JSON.stringify({
      bench: "lorawan-uplink",
      uplinks: N,
      devices: DEVICES,
      rounds: ROUNDS,
      all_rounds: { end_to_end: ours.map(Math.round), reference: refs.map(Math.round) },
      uplinks_per_s: Math.round(rate),
      readings_stored: last?.readings,
      reference: {
        what: "bare lora-packet parse + MIC (32-bit FCnt) + decrypt of the same frames, tight loop (best round)",
        uplinks_per_s: Math.round(ref),
      },
      ratio: Number((rate / ref).toFixed(3)),
      goal: { uplinks_per_s: 2000 },
      pass: rate >= 2000,
      path: "UDP PUSH_DATA → ack → dedup (200ms window) → MIC → decrypt → session+counter persisted (store KV, synchronous=FULL) → QuickJS codec worker → store group commit",
      counters: {
        uplinks: last?.counters.uplinks,
        decoded: last?.counters.decoded,
        codec_errors: last?.counters.codec_errors,
        mic_failed: last?.counters.mic_failed,
      },
    })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
