/**
 * Benchmark: a committed backlog of 1,000,000 readings drained by the agent (default uplink
 * settings: batch_size 500, inflight 16, QoS 1, outbox watermark advanced on each PUBACK) to a
 * local Mosquitto and counted by a subscriber — next to the reference measured in the same run:
 * raw mqtt.js publishing the SAME payloads (rendered beforehand, QoS 1, all at once) to the same
 * broker, counted by the same subscriber.
 * Goals (issue 3): the whole backlog in under 10 s on the 2-core machine, and ≥ 50 % of raw.
 */
import mqtt from "mqtt";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Agent } from "../agent/agent.js";
import { readingRecord, withSeq } from "../agent/store/records.js";
import { Store } from "../agent/store/store.js";
import { configSchema } from "../config/schema.js";
import { Counter } from "./lib/counter.js";
import { BenchBroker } from "./lib/mosquitto.js";

const N = 1_000_000;
const dir = mkdtempSync(join(tmpdir(), "eclor-bench-drain-"));
const silent = pino({ level: "silent" });

function config(url: string) {
  return configSchema.parse({
    version: 1,
    gateway: { id: "bench-agent" },
    state_dir: dir,
    log: { level: "silent" },
    uplink: { url, ...(process.env.BENCH_UPLINK ? JSON.parse(process.env.BENCH_UPLINK) : {}) },
  });
}

/** Commit the backlog through the store's own insert path (big transactions, to save time). */
function prefill(path: string): void {
  const cfg = configSchema.parse({
    version: 1,
    gateway: { id: "x" },
    uplink: { url: "mqtt://127.0.0.1:1" },
  }).store;
  const store = new Store({ ...cfg, path, logger: silent }).open();
  const ts = Date.now();
  const CH = 50_000;
  for (let i = 0; i < N; i += CH) {
    const recs: ReturnType<typeof readingRecord>[] = [];
    for (let j = 0; j < CH; j++) {
      recs.push(
        readingRecord(
          {
            device: `meter${(i + j) % 50}`,
            point: "active_energy",
            ts: ts + j,
            value: 1_000_000 + i + j,
            unit: "Wh",
            quality: "good",
          },
          1,
        ),
      );
    }
    store.db.transaction(() => store.outbox.insert(recs))();
  }
  store.close();
}

/** The same payloads the agent publishes, rendered from the store before the clock starts. */
function payloads(path: string, batch: number): string[] {
  const cfg = configSchema.parse({
    version: 1,
    gateway: { id: "x" },
    uplink: { url: "mqtt://127.0.0.1:1" },
  }).store;
  const store = new Store({ ...cfg, path, logger: silent }).open();
  const out: string[] = [];
  let after = 0;
  for (;;) {
    const rows = store.outbox.fetch(1, after, batch);
    if (rows.length === 0) break;
    out.push(`{"records":[${rows.map((r) => withSeq(r.seq, r.body)).join(",")}]}`);
    after = rows[rows.length - 1]!.seq;
  }
  store.close();
  return out;
}

async function rawRun(url: string, msgs: string[]): Promise<number> {
  const topic = "eclor/v1/bench-raw/telemetry";
  const counter = await Counter.start(url, topic);
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: "bench-raw" });
  const t0 = performance.now();
  await Promise.all(msgs.map((m) => client.publishAsync(topic, m, { qos: 1 })));
  const t1 = await counter.until(N);
  await client.endAsync();
  await counter.stop();
  return (t1 - t0) / 1000;
}

async function agentRun(url: string): Promise<{ s: number; messages: number }> {
  const counter = await Counter.start(url, "eclor/v1/bench-agent/telemetry");
  const agent = new Agent(config(url), { logger: silent });
  const t0 = performance.now();
  await agent.start();
  const t1 = await counter.until(N);
  const messages = agent.uplink.status().published_messages;
  await agent.stop();
  await counter.stop();
  return { s: (t1 - t0) / 1000, messages };
}

const broker = await BenchBroker.start();
try {
  const path = join(dir, "store.db");
  const c = config(broker.url);
  prefill(path);
  const msgs = payloads(path, c.uplink.batch_size);
  const bytes = msgs.reduce((a, m) => a + m.length, 0);
  const raw = await rawRun(broker.url, msgs);
  const ours = await agentRun(broker.url);
  const ratio = raw / ours.s;
  process.stdout.write(
    `${JSON.stringify({
      bench: "drain",
      readings: N,
      seconds: Number(ours.s.toFixed(2)),
      readings_per_s: Math.round(N / ours.s),
      messages: ours.messages,
      payload_mb: Number((bytes / 1e6).toFixed(1)),
      reference: {
        what: "raw mqtt.js QoS 1 publish of the same payloads, all at once, same broker and counter",
        seconds: Number(raw.toFixed(2)),
        readings_per_s: Math.round(N / raw),
      },
      ratio: Number(ratio.toFixed(3)),
      goal: { seconds: 10, ratio: 0.5 },
      pass: ours.s < 10 && ratio >= 0.5,
      settings: { batch_size: c.uplink.batch_size, inflight: c.uplink.inflight },
    })}\n`,
  );
} finally {
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}
