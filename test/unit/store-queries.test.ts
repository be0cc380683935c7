/**
 * History, replay and export queries on a real SQLite store (issue 15 items 6 and 7): pages are
 * bounded in work and say where to continue, a filter that matches nothing still pages through
 * to the end (null cursor), every matching row is found exactly once across pages, and replay
 * tells seqs never assigned from seqs no longer stored.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, expect, it } from "vitest";
import { queryHistory, replayPayloads } from "../../agent/commands/history.js";
import { STEP_SEQS } from "../../agent/store/queries.js";
import { Store } from "../../agent/store/store.js";

let dir: string;
let store: Store;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "eclor-queries-"));
  store = new Store({
    path: join(dir, "store.db"),
    max_bytes: 256 * 1024 * 1024,
    flush_ms: 20,
    flush_count: 100_000,
    history_days: 30,
    cleanup_interval_ms: 3_600_000,
    backfill_after_ms: 3_600_000,
    memory_max: 1_000_000,
    retry_ms: 100,
    logger: pino({ level: "silent" }),
  }).open();
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 10, 1);
const N = 10 * STEP_SEQS; // several steps: the bound is exercised, not just the limit

function fill(): void {
  for (let lo = 0; lo < N; lo += 10_000) {
    store.appendReadings(
      Array.from({ length: 10_000 }, (_, j) => {
        const i = lo + j;
        return {
          device: `d${i % 10}`,
          point: i % 1000 === 0 ? "rare" : "power",
          ts: T0 + i * 1000,
          value: i,
          unit: "W",
          quality: "good" as const,
        };
      }),
      1,
    );
    store.flush();
  }
}

function pageAll(q: Parameters<typeof queryHistory>[1]): { seqs: number[]; pages: number } {
  const seqs: number[] = [];
  let after = 0;
  let pages = 0;
  for (;;) {
    const r = queryHistory(store, { ...q, afterSeq: after });
    pages++;
    seqs.push(...r.records.map((x) => x.seq));
    expect(r.epoch).toBe(store.epoch);
    if (r.next_after_seq === null) return { seqs, pages };
    expect(r.next_after_seq).toBeGreaterThan(after); // always progresses
    after = r.next_after_seq;
  }
}

it("a point without rows pages to the end; a rare point is found exactly once per row", () => {
  fill();
  const none = pageAll({ device: "d1", point: "nope", from: T0, to: T0 + N * 1000, limit: 500 });
  expect(none.seqs).toEqual([]);
  // d0/rare: every 1000th reading
  const rare = pageAll({ device: "d0", point: "rare", from: T0, to: T0 + N * 1000, limit: 7 });
  expect(rare.seqs).toEqual(Array.from({ length: N / 1000 }, (_, k) => k * 1000 + 1));
  // A time window: ts = T0 + (seq - 1) s, so [T0+5000 s, T0+5100 s) is seqs 5001..5100.
  const win = pageAll({ from: T0 + 5_000_000, to: T0 + 5_100_000, limit: 30 });
  expect(win.seqs).toEqual(Array.from({ length: 100 }, (_, k) => 5001 + k));
  // A device: limit honoured on every page, nothing twice.
  const dev = pageAll({ device: "d3", from: T0, to: T0 + N * 1000, limit: 500 });
  expect(dev.seqs).toHaveLength(N / 10);
  expect(new Set(dev.seqs).size).toBe(N / 10);
});

it("replay says which seqs were never assigned and which are gone", () => {
  fill();
  store.markSent(1, 3000);
  expect(store.deleteHistoryBefore(T0 + 1000 * 1000)).toBe(1000); // seqs 1..1000 expired
  const r = replayPayloads(store, 900, 1100, 50);
  expect(r.stored).toBe(100); // 1001..1100
  expect(r.batches.every((b) => b.count <= 50)).toBe(true);
  expect(store.neverAssigned(900, 1100)).toBeNull();
  expect(store.neverAssigned(N - 5, N + 10)).toEqual({ from_seq: N + 1, to_seq: N + 10 });
  const b = JSON.parse(r.batches[0]!.payload) as { epoch: string; records: { seq: number }[] };
  expect(b.epoch).toBe(store.epoch);
  expect(b.records[0]!.seq).toBe(1001);
});
