/**
 * Benchmark (issue 14.3): 50,000 QoS 0 `read` commands published at once to a running daemon
 * (`eclor-edge run`, the built CLI, its own process so its RSS is measured alone), with a local
 * Mosquitto and a Modbus simulator. Figure: the daemon's peak RSS during the flood minus its
 * idle RSS just before it — goal ≤ +30 MB (reference: before the bounds, 40,000 reads took it
 * from 92 MB to 872 MB). Also the answers received and their rate, by error code: beyond the
 * per-device read limit and the in-flight cap the agent answers CommandRateLimited/CommandBusy,
 * beyond MAX_PENDING_ANSWERS it drops requests unanswered (counted in its audit).
 */
import mqtt from "mqtt";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { ModbusSimulator, addSimDevice } from "../sim/modbus/index.js";
import { BenchBroker } from "./lib/mosquitto.js";

const N = Number(process.env.BENCH_FLOOD_N ?? 50_000);
const GW = "bench-flood";
const GOAL_MB = 30;
const cli = resolve(import.meta.dirname, "../agent/main.js");
const dir = mkdtempSync(join(tmpdir(), "eclor-bench-flood-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const broker = await BenchBroker.start();
const sim = new ModbusSimulator();
addSimDevice(sim, 3, "dali-gateway");
const simPort = await sim.listenTcp(0);
const configPath = join(dir, "config.yaml");
writeFileSync(
  configPath,
  stringify({
    version: 1,
    gateway: { id: GW },
    state_dir: join(dir, "state"),
    control: { socket: join(dir, "control.sock") },
    log: { level: "warn" },
    uplink: { url: broker.url },
    drivers: [
      {
        id: "lighting",
        driver: "modbus",
        transport: { type: "tcp", host: "127.0.0.1", port: simPort },
        poll_interval: "1s",
        devices: [
          { id: "dali", unit_id: 3, profile: "dali-gateway", profile_counts: { lamps: 8 } },
        ],
      },
    ],
  }),
);

const hv = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: "bench-hv" });
const codes = new Map<string, number>();
let answers = 0;
let firstAnswer = 0;
let lastAnswer = 0;
let online = false;
hv.on("message", (topic, payload) => {
  if (topic === `eclor/v1/${GW}/state`) {
    online = (JSON.parse(payload.toString()) as { online?: boolean }).online === true;
    return;
  }
  const r = JSON.parse(payload.toString()) as { ok: boolean; error?: { code: string } };
  const code = r.ok ? "ok" : r.error!.code;
  codes.set(code, (codes.get(code) ?? 0) + 1);
  answers++;
  lastAnswer = performance.now();
  firstAnswer ||= lastAnswer;
});
await hv.subscribeAsync([`eclor/v1/${GW}/res/#`, `eclor/v1/${GW}/state`], { qos: 1 });

const daemon = spawn(process.execPath, [cli, "run", "--config", configPath], {
  stdio: ["ignore", "ignore", "inherit"],
});
try {
  for (const end = Date.now() + 60_000; !online; await sleep(100))
    if (Date.now() > end || daemon.exitCode !== null) throw new Error("the daemon did not start");
  // Let it settle (first polls, SQLite caches, JIT) before the idle figure.
  await sleep(3000);
  const idle = rssMb(daemon.pid!);
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(daemon.pid!))), 25);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    hv.publish(
      `eclor/v1/${GW}/cmd/read`,
      JSON.stringify({ id: `flood-${i}`, device: "dali", points: ["lamp1_level"] }),
      { qos: 0 },
    );
    if (i % 1000 === 999) await sleep(0);
  }
  const sent = performance.now();
  // Until the answers stop coming for 3 s.
  while (performance.now() - Math.max(lastAnswer, sent) < 3000) await sleep(100);
  clearInterval(sampler);
  peak = Math.max(peak, rssMb(daemon.pid!));
  const after = rssMb(daemon.pid!);
  const answerS = (lastAnswer - t0) / 1000;
  process.stdout.write(
    `${JSON.stringify({
      bench: "command-flood",
      commands: N,
      idle_rss_mb: Number(idle.toFixed(1)),
      peak_rss_mb: Number(peak.toFixed(1)),
      rss_after_mb: Number(after.toFixed(1)),
      peak_delta_mb: Number((peak - idle).toFixed(1)),
      answered: answers,
      answers_per_s: Math.round(answers / answerS),
      publish_s: Number(((sent - t0) / 1000).toFixed(2)),
      by_code: Object.fromEntries(codes),
      reference: {
        what: "the same daemon's idle RSS just before the flood; goal peak - idle ≤ 30 MB",
        idle_rss_mb: Number(idle.toFixed(1)),
      },
      goal: { peak_delta_mb: GOAL_MB },
      ok: peak - idle <= GOAL_MB,
    })}\n`,
  );
} finally {
  daemon.kill("SIGTERM");
  await new Promise((r) => daemon.once("exit", r));
  await hv.endAsync();
  await sim.close();
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}
