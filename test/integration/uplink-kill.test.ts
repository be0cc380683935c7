/**
 * The real daemon (`node dist/agent/main.js run --config …`, built by `npm test`'s pretest) is
 * SIGKILLed several times while draining a committed backlog to a real Mosquitto, and restarted:
 * every committed reading arrives, duplicates come only from the batches in flight at each kill,
 * and after a restart the agent resumes at the first unacknowledged seq. Then SIGTERM: exit 0,
 * offline state published.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Store } from "../../agent/store/store.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { hypervisor } from "./uplink-fixtures.js";

const repo = resolve(import.meta.dirname, "../..");
const main = join(repo, "dist/agent/main.js");
const N = 60_000;
const BATCH = 50;
const INFLIGHT = 4;

let broker: Mosquitto;
let dir: string;
const procs: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(main))
    throw new Error(`${main} is missing: build first (npx tsc -p tsconfig.build.json)`);
  broker = await Mosquitto.start();
  dir = mkdtempSync(join(tmpdir(), "eclor-kill-"));
});
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  await broker.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function spawnAgent(config: string): { proc: ChildProcess; log: () => string } {
  let log = "";
  const proc = spawn(process.execPath, [main, "run", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  proc.stdout.on("data", (d: Buffer) => (log += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (log += d.toString()));
  procs.push(proc);
  return { proc, log: () => log };
}

/** Resolves once `arr` stopped growing for 500 ms. */
async function quiet(arr: unknown[]): Promise<void> {
  let n = -1;
  while (arr.length !== n) {
    n = arr.length;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function exited(p: ChildProcess): Promise<number | null> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve(p.exitCode)
    : new Promise((r) => p.once("exit", (code) => r(code)));
}

it("SIGKILL in the middle of draining, three times: every committed reading arrives, duplicates only from in-flight batches", async () => {
  const storePath = join(dir, "store.db");
  // The backlog, committed before the agent runs (as after a long outage).
  const store = new Store({
    path: storePath,
    max_bytes: 512 << 20,
    flush_ms: 200,
    flush_count: 1000,
    history_days: 30,
    cleanup_interval_ms: 3_600_000,
    backfill_after_ms: 3_600_000,
    memory_max: 100_000,
    retry_ms: 1000,
    logger: pino({ level: "silent" }),
  }).open();
  for (let i = 0; i < N; i += 1000) {
    store.appendReadings(
      Array.from({ length: 1000 }, (_, j) => ({
        device: "meter1",
        point: "energy",
        ts: Date.now(),
        value: i + j,
        unit: "Wh",
        quality: "good" as const,
      })),
    );
    store.flush();
  }
  store.close();

  const config = join(dir, "config.yaml");
  writeFileSync(
    config,
    `version: 1
gateway: { id: gw-kill }
state_dir: ${dir}
log: { level: info }
uplink:
  url: ${broker.url}
  batch_size: ${BATCH}
  inflight: ${INFLIGHT}
  reconnect_min_ms: 100
  reconnect_max_ms: 1000
control: { socket: ${join(dir, "control.sock")} }
`,
  );
  const { client, rx } = await hypervisor(broker.url, "gw-kill");
  const distinct = (): number => new Set(rx.telemetry).size;
  const killsAt: number[] = [];
  for (let k = 1; k <= 3; k++) {
    const target = distinct() + 1500;
    const { proc, log } = spawnAgent(config);
    // Kill from the message handler itself, the moment this run has delivered 1500 more
    // readings: polling would lag behind a fast drain on a loaded machine.
    const killer = (): void => {
      if (proc.exitCode === null && !proc.killed && distinct() >= target) proc.kill("SIGKILL");
    };
    client.on("message", killer);
    await waitFor(() => proc.killed || proc.exitCode !== null, 60_000, `run ${k} delivering`);
    client.off("message", killer);
    const code = await exited(proc);
    expect(proc.signalCode, log()).toBe("SIGKILL");
    expect(code).toBeNull();
    // What the dead agent had already handed to the broker is still arriving: let it settle.
    await quiet(rx.telemetry);
    killsAt.push(Math.max(...rx.telemetry));
    expect(distinct()).toBeLessThan(N); // really in the middle of the backlog
  }
  // Last run: drain everything, then a clean stop.
  const { proc, log } = spawnAgent(config);
  await waitFor(() => distinct() === N, 90_000, "the whole backlog");
  proc.kill("SIGTERM");
  // "Within a few seconds" (issue 3): the daemon bounds its own clean stop (agent/agent.ts: after
  // 8 s it logs "clean stop took longer than 8 s" and exits 1), so exit 0 means the clean stop
  // finished within the bound, measured by the agent and not by this loaded test machine.
  expect(await exited(proc), log()).toBe(0);
  expect(log()).not.toMatch(/clean stop took longer/);
  await waitFor(
    () => rx.state.some((s) => (s as { reason?: string }).reason === "shutdown"),
    5000,
    "offline state",
  );
  await client.endAsync();

  expect(rx.invalid).toEqual([]);
  const sorted = [...new Set(rx.telemetry)].sort((a, b) => a - b);
  expect(sorted).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  // Duplicates: at most the batches in flight at each kill, and only just below the kill point.
  const seen = new Map<number, number>();
  for (const s of rx.telemetry) seen.set(s, (seen.get(s) ?? 0) + 1);
  const dups = [...seen].filter(([, n]) => n > 1).map(([s]) => s);
  expect(rx.telemetry.length - N).toBeLessThanOrEqual(3 * INFLIGHT * BATCH);
  for (const d of dups) {
    expect(killsAt.some((at) => d <= at && d > at - INFLIGHT * BATCH * 2)).toBe(true);
  }
  // Within each agent run seqs only go up (single priority): the hypervisor sees ordered runs.
  let runs = 1;
  for (let i = 1; i < rx.telemetry.length; i++) if (rx.telemetry[i]! < rx.telemetry[i - 1]!) runs++;
  expect(runs).toBeLessThanOrEqual(4);
}, 240_000);

it("a corrupt store file: the daemon reports it clearly, keeps running (no crash loop), and stops cleanly", async () => {
  const sub = mkdtempSync(join(dir, "corrupt-"));
  writeFileSync(join(sub, "store.db"), "not a database ".repeat(500));
  const config = join(sub, "config.yaml");
  writeFileSync(
    config,
    `version: 1
gateway: { id: gw-corrupt }
state_dir: ${sub}
uplink: { url: "${broker.url}", reconnect_min_ms: 100, reconnect_max_ms: 1000 }
control: { socket: ${join(sub, "control.sock")} }
`,
  );
  const { client, rx } = await hypervisor(broker.url, "gw-corrupt");
  const { proc, log } = spawnAgent(config);
  await waitFor(() => log().includes("EE0202"), 45_000, "the store error in the log");
  expect(log()).toMatch(/corrupt or not a SQLite file.*move the file aside/);
  // The uplink still comes up (state online), and the process does not exit.
  await waitFor(
    () => rx.state.some((s) => (s as { online: boolean }).online),
    10_000,
    "online state",
  );
  expect(proc.exitCode).toBeNull();
  proc.kill("SIGTERM");
  expect(await exited(proc), log()).toBe(0);
  await client.endAsync();
}, 120_000);
