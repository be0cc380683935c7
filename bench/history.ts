/**
 * Benchmark (issue 15 item 6): event-loop time of one history / replay / export page on a store
 * the size of a full default store (5 M rows, ~512 MiB), in the cases that used to scan the whole
 * table: a point without rows, a window without rows, plus an ordinary page and a replay page.
 * Each page is timed as the synchronous call it is (that is the time polling waits), in wall time
 * and in CPU time of this thread (the event loop's: better-sqlite3 runs in it). Reference in
 * the same run: the unbounded query the agent used before (seq order with filters, no bound).
 * Goal: every page < 20 ms. ROWS can be lowered with ECLOR_BENCH_ROWS for a quick look.
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { configSchema } from "../config/schema.js";
import { queryHistory, replayPayloads } from "../agent/commands/history.js";
import { migrateUserVersion } from "../agent/store/db.js";
import { readingRecord } from "../agent/store/records.js";
import { coreMigrations } from "../agent/store/schema.js";
import { Store } from "../agent/store/store.js";

const ROWS = Number(process.env.ECLOR_BENCH_ROWS ?? 5_000_000);
const POINTS = 2000; // 500 devices × 4 points
const ROUNDS = 5;
const GOAL_MS = 20;
const dir = mkdtempSync(join(tmpdir(), "eclor-bench-history-"));
const path = join(dir, "store.db");
const t0 = Date.UTC(2026, 10, 1);

function build(): void {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF"); // building the fixture only
  migrateUserVersion(db, coreMigrations);
  const insert = db.prepare(
    "INSERT INTO outbox (seq, prio, stream, ts, name, body) VALUES (?, ?, ?, ?, ?, ?)",
  );
  const step = 10_000;
  for (let lo = 0; lo < ROWS; lo += step) {
    db.transaction(() => {
      for (let i = lo; i < Math.min(ROWS, lo + step); i++) {
        const p = i % POINTS;
        const r = readingRecord(
          {
            device: `meter${Math.floor(p / 4)}`,
            point: ["active_power", "energy", "voltage", "current"][p % 4]!,
            ts: t0 + Math.floor(i / POINTS) * 5000,
            value: i * 0.5,
            unit: "W",
            quality: "good",
          },
          1,
        );
        insert.run(i + 1, r.prio, r.stream, r.ts, r.name, r.body);
      }
    })();
  }
  // Everything sent: history, as on a box that has been running for weeks.
  db.prepare("UPDATE meta SET value = ? WHERE key IN ('sent_0', 'sent_1', 'sent_2')").run(ROWS);
  db.prepare("UPDATE meta SET value = ? WHERE key = 'next_seq'").run(ROWS + 1);
  db.close();
}

/** Wall time of the call, and its CPU time (this thread is the event loop: SQLite runs in it). */
const cpuMs: Record<string, number[]> = {};
function time(fn: () => unknown, name = "reference"): number {
  const c = process.cpuUsage();
  const a = performance.now();
  fn();
  const wall = performance.now() - a;
  const used = process.cpuUsage(c);
  (cpuMs[name] ??= []).push((used.user + used.system) / 1000);
  return wall;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x: number) => Number(x.toFixed(2));
  return { min: r(s[0]!), median: r(s[Math.floor(s.length / 2)]!), max: r(s[s.length - 1]!) };
};

try {
  const tb = performance.now();
  build();
  const buildS = (performance.now() - tb) / 1000;
  const defaults = configSchema.parse({
    version: 1,
    gateway: { id: "bench" },
    uplink: { url: "mqtt://127.0.0.1:1" },
  }).store;
  const store = new Store({ ...defaults, path, logger: pino({ level: "silent" }) }).open();
  const end = t0 + Math.floor(ROWS / POINTS) * 5000;
  const cases = {
    point_without_rows: { device: "meter1", point: "nope", from: t0, to: end, limit: 500 },
    window_without_rows: { from: end + 86_400_000, to: end + 2 * 86_400_000, limit: 500 },
    ordinary_point_page: { device: "meter7", point: "energy", from: t0, to: end, limit: 500 },
    device_page: { device: "meter42", from: t0, to: end, limit: 500 },
  };
  const pages: Record<string, number[]> = {};
  for (const [name, q] of Object.entries(cases)) {
    pages[name] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // A page in the middle of the store (the cursor of a client that pages on).
      const afterSeq = Math.floor((ROWS / ROUNDS) * r);
      pages[name].push(time(() => queryHistory(store, { ...q, afterSeq }), name));
    }
  }
  pages.replay_page = [];
  for (let r = 0; r < ROUNDS; r++) {
    const lo = 1 + Math.floor((ROWS / ROUNDS) * r);
    pages.replay_page.push(time(() => replayPayloads(store, lo, lo + 999, 500), "replay_page"));
  }
  pages.export_page = [];
  for (let r = 0; r < ROUNDS; r++)
    pages.export_page.push(
      time(
        () => store.readingsPage({ point: "voltage" }, Math.floor((ROWS / ROUNDS) * r), 500),
        "export_page",
      ),
    );
  store.close();

  // Reference: the query the agent ran before (no bound), point without rows, same file.
  const db = new Database(path, { readonly: true });
  const old = db.prepare(
    "SELECT seq, stream, body FROM outbox WHERE stream = 'telemetry' AND ts >= ? AND ts < ? AND seq > ? AND name = ? ORDER BY seq LIMIT ?",
  );
  const ref = [time(() => old.all(t0, end, 0, "meter1/nope", 501))];
  db.close();

  const per = Object.fromEntries(Object.entries(pages).map(([k, v]) => [k, stats(v)]));
  const cpu = Object.fromEntries(Object.entries(cpuMs).map(([k, v]) => [k, stats(v)]));
  const worst = Math.max(...Object.values(pages).flat());
  const worstCpu = Math.max(
    ...Object.entries(cpuMs)
      .filter(([k]) => k !== "reference")
      .flatMap(([, v]) => v),
  );
  process.stdout.write(
    `${JSON.stringify({
      bench: "history",
      rows: ROWS,
      build_s: Number(buildS.toFixed(1)),
      rounds: ROUNDS,
      page_ms: per,
      page_cpu_ms: cpu,
      worst_page_ms: Number(worst.toFixed(2)),
      worst_page_cpu_ms: Number(worstCpu.toFixed(2)),
      reference: {
        what: "the previous unbounded history query (point without rows), same store, same run",
        ms: stats(ref),
        cpu_ms: cpuMs.reference ? stats(cpuMs.reference) : undefined,
      },
      load_average_1min: Number(loadavg()[0]!.toFixed(1)),
      cpus: cpus().length,
      goal: {
        page_ms_below: GOAL_MS,
        note: "pass uses the CPU time of each page (the event-loop work); wall time on a shared, loaded machine includes time descheduled",
      },
      pass: worstCpu < GOAL_MS,
    })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
