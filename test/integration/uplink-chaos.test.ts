/**
 * The chaos test, short form (issue 15): the real daemon polls a Modbus simulator (ingest) and
 * drains to a real Mosquitto while it is SIGKILLed three times at the moment readings are
 * flowing; a subscriber keeps every record it receives. Afterwards the store file is the truth:
 * every record the broker acknowledged (at or below its priority's watermark) reached the
 * subscriber, every record received is in the store with exactly the same content under the
 * same (epoch, seq), and nothing arrived that the store does not hold.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import mqtt from "mqtt";
import { pino } from "pino";
import { afterAll, expect, it } from "vitest";
import { withSeq } from "../../agent/store/records.js";
import { Store } from "../../agent/store/store.js";
import { ModbusSimulator } from "../../sim/modbus/server.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";

const main = join(resolve(import.meta.dirname, "../.."), "dist/agent/main.js");
const dir = mkdtempSync(join(tmpdir(), "eclor-chaos-"));
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

it("kill -9 during ingest and drain, three times: the subscriber matches the store", async () => {
  const broker = await Mosquitto.start();
  cleanups.push(() => broker.dispose());
  const sim = new ModbusSimulator();
  for (let u = 1; u <= 4; u++) {
    const unit = sim.addUnit(u);
    for (let a = 0; a < 10; a++) unit.bank.set("holding", a, u * 100 + a);
    unit.bank.map("holding", 0, 10);
  }
  const simPort = await sim.listenTcp(0);
  cleanups.push(() => sim.close());

  // The subscriber: every record by (epoch, seq), with its content.
  const got = new Map<string, string>();
  let arrivals = 0;
  const sub = await mqtt.connectAsync(broker.url, {
    protocolVersion: 5,
    clean: false,
    clientId: "hv-chaos",
    properties: { sessionExpiryInterval: 600 },
  });
  cleanups.push(() => sub.endAsync(true));
  sub.on("message", (topic, payload) => {
    if (!/\/(telemetry|events)$/.test(topic)) return;
    const p = JSON.parse(payload.toString()) as { epoch: string; records: { seq: number }[] };
    for (const r of p.records) {
      const key = `${p.epoch}:${r.seq}`;
      const text = JSON.stringify(r);
      const before = got.get(key);
      if (before !== undefined && before !== text) throw new Error(`${key} changed: ${text}`);
      got.set(key, text);
      arrivals++;
    }
  });
  await sub.subscribeAsync("eclor/v1/gw-chaos/#", { qos: 1 });

  const config = join(dir, "config.yaml");
  const points = Array.from(
    { length: 10 },
    (_, a) => `{ id: r${a}, table: holding, address: ${a}, type: uint16 }`,
  ).join(", ");
  writeFileSync(
    config,
    `version: 1
gateway: { id: gw-chaos }
state_dir: ${dir}
log: { level: warn }
control: { socket: ${join(dir, "control.sock")} }
uplink: { url: "${broker.url}", batch_size: 50, inflight: 4, reconnect_min_ms: 100, reconnect_max_ms: 1000 }
store: { flush_ms: 50 }
drivers:
  - id: bus
    driver: modbus
    transport: { type: tcp, host: 127.0.0.1, port: ${simPort} }
    poll_interval: 100ms
    devices:
${[1, 2, 3, 4].map((u) => `      - { id: m${u}, unit_id: ${u}, points: [${points}] }`).join("\n")}
`,
  );
  const spawnAgent = (): { proc: ChildProcess; log: () => string } => {
    let log = "";
    const proc = spawn(process.execPath, [main, "run", "--config", config], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout.on("data", (d: Buffer) => (log += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (log += d.toString()));
    cleanups.push(() => proc.exitCode === null && proc.kill("SIGKILL"));
    return { proc, log: () => log };
  };
  const exited = (p: ChildProcess) =>
    p.exitCode !== null || p.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => p.once("exit", () => r()));

  for (let k = 0; k < 3; k++) {
    const { proc, log } = spawnAgent();
    const target = arrivals + 400 + k * 137; // a different moment in each run
    await waitFor(() => arrivals >= target, 60_000, `run ${k + 1} delivering: ${log()}`);
    proc.kill("SIGKILL");
    await exited(proc);
    expect(proc.signalCode).toBe("SIGKILL");
  }
  // Last run: acquisition stops (simulator gone), the backlog drains, then a clean stop.
  const { proc, log } = spawnAgent();
  await waitFor(() => arrivals > 0 && got.size > 1500, 60_000, `last run delivering: ${log()}`);
  await sim.close();
  let last = -1;
  await waitFor(
    async () => {
      const now = got.size;
      const settled = now === last;
      last = now;
      await new Promise((r) => setTimeout(r, 1000));
      return settled;
    },
    60_000,
    "the backlog drained",
  );
  proc.kill("SIGTERM");
  await exited(proc);

  // The store is the truth.
  const store = new Store({
    path: join(dir, "store.db"),
    max_bytes: 512 << 20,
    flush_ms: 50,
    flush_count: 1000,
    history_days: 30,
    cleanup_interval_ms: 3_600_000,
    backfill_after_ms: 3_600_000,
    memory_max: 100_000,
    retry_ms: 1000,
    logger: pino({ level: "silent" }),
  }).open();
  cleanups.push(() => store.close());
  const epoch = store.epoch;
  const rows = store.recordsInRange(1, store.stats().next_seq, 10_000_000);
  const missing: number[] = [];
  const differ: string[] = [];
  const stored = new Set<string>();
  for (const r of rows) {
    const key = `${epoch}:${r.seq}`;
    stored.add(key);
    const want = JSON.stringify(JSON.parse(withSeq(r.seq, r.body)));
    const have = got.get(key);
    if (have === undefined) {
      // Only records the broker never acknowledged may be missing.
      const prio = r.stream === "telemetry" ? 1 : 0;
      if (r.seq <= store.outbox.sentUpTo(prio)) missing.push(r.seq);
    } else if (have !== want) differ.push(`${key}: ${have} ≠ ${want}`);
  }
  expect(rows.length).toBeGreaterThan(1500);
  expect(store.outbox.sentUpTo(1)).toBeGreaterThan(1500); // the check below covers real ground
  expect(missing).toEqual([]);
  expect(differ).toEqual([]);
  expect([...got.keys()].filter((k) => !stored.has(k))).toEqual([]);
}, 240_000);
