/**
 * Benchmark: readings/s committed by the store with the default group commit (flush_ms 200,
 * flush_count 1000, WAL + synchronous=FULL: one fsync per group), fed the way drivers feed it
 * (batches of 100 through the pipeline, yielding to the event loop between batches), next to the
 * reference limit measured in the same run: raw better-sqlite3 inserts of the same rows (same
 * schema, same pragmas) in ONE transaction with a prepared statement.
 * Goal (issue 3): at least 40 % of the raw rate.
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { configSchema } from "../config/schema.js";
import type { Reading } from "../drivers/driver.js";
import { Pipeline } from "../agent/pipeline/index.js";
import { migrateUserVersion } from "../agent/store/db.js";
import { readingRecord } from "../agent/store/records.js";
import { coreMigrations } from "../agent/store/schema.js";
import { Store } from "../agent/store/store.js";

const N = 200_000;
/** The machine is shared and noisy: alternate the two measurements and keep the best of each. */
const ROUNDS = 3;
const CHUNK = 100;
const dir = mkdtempSync(join(tmpdir(), "eclor-bench-ingest-"));
const defaults = configSchema.parse({
  version: 1,
  gateway: { id: "bench" },
  uplink: { url: "mqtt://127.0.0.1:1" },
}).store;

function readings(offset: number, n: number, ts: number): Reading[] {
  const out: Reading[] = [];
  for (let i = 0; i < n; i++)
    out.push({
      device: `meter${(offset + i) % 50}`,
      point: "active_power",
      ts,
      value: (offset + i) * 0.5,
      unit: "W",
      quality: "good",
    });
  return out;
}

async function storeRate(round: number): Promise<number> {
  const store = new Store({
    ...defaults,
    path: join(dir, `store-${round}.db`),
    logger: pino({ level: "silent" }),
  }).open();
  const pipeline = new Pipeline(
    new Map(),
    (r) => store.appendReadings(r),
    pino({ level: "silent" }),
  );
  let committed = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  store.onStored((recs) => {
    committed += recs.length;
    if (committed >= N) done();
  });
  const t0 = performance.now();
  const ts = Date.now();
  for (let i = 0; i < N; i += CHUNK) {
    pipeline.ingest(readings(i, CHUNK, ts));
    if ((i / CHUNK) % 10 === 9) await new Promise((r) => setImmediate(r));
  }
  await finished;
  const s = (performance.now() - t0) / 1000;
  store.close();
  return N / s;
}

function rawRate(round: number): number {
  const db = new Database(join(dir, `raw-${round}.db`));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  migrateUserVersion(db, coreMigrations);
  const ts = Date.now();
  // Same rows, rendered before the clock starts: the reference is SQLite alone.
  const rows = readings(0, N, ts).map((r) => readingRecord(r, 1));
  const insert = db.prepare(
    "INSERT INTO outbox (seq, prio, stream, ts, name, body) VALUES (?, ?, ?, ?, ?, ?)",
  );
  const t0 = performance.now();
  db.transaction(() => {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      insert.run(i + 1, r.prio, r.stream, r.ts, r.name, r.body);
    }
  })();
  const s = (performance.now() - t0) / 1000;
  db.close();
  return N / s;
}

try {
  const raws: number[] = [];
  const ourss: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    raws.push(rawRate(r));
    ourss.push(await storeRate(r));
  }
  const raw = Math.max(...raws);
  const ours = Math.max(...ourss);
  const ratio = ours / raw;
  process.stdout.write(
    `${JSON.stringify({
      bench: "store-ingest",
      readings: N,
      rounds: ROUNDS,
      all_rounds: { store: ourss.map(Math.round), raw: raws.map(Math.round) },
      readings_per_s: Math.round(ours),
      reference: {
        what: "raw better-sqlite3 inserts of the same rows, one transaction, same schema and pragmas (best round)",
        readings_per_s: Math.round(raw),
      },
      ratio: Number(ratio.toFixed(3)),
      goal: { ratio: 0.4 },
      pass: ratio >= 0.4,
      settings: {
        flush_ms: defaults.flush_ms,
        flush_count: defaults.flush_count,
        synchronous: "FULL",
        journal_mode: "WAL",
      },
    })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
