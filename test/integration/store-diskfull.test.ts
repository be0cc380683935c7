/**
 * A real full disk (issue 15 item 2): the store's SQLite file on a small tmpfs mounted by the
 * test (CI runs as root). While full the store retries only on retry_ms (not on every append),
 * evicts already-sent history first, commits what a little free space allows, and every reading
 * it could not keep — memory overflow, shutdown while full — is counted in a gap event with its
 * count and time range. The acquisition rate while full is measured in bench/store-full.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, expect, it } from "vitest";
import type { Reading } from "../../drivers/driver.js";
import type { StoredRecord } from "../../agent/store/records.js";
import { Store } from "../../agent/store/store.js";

const dir = mkdtempSync(join(tmpdir(), "eclor-full-"));
let mounted = false;
afterAll(() => {
  if (mounted) execFileSync("umount", ["-l", dir]);
  rmSync(dir, { recursive: true, force: true });
});

function open(listener: (r: readonly StoredRecord[]) => void): Store {
  const s = new Store({
    path: join(dir, "store.db"),
    max_bytes: 128 * 1024 * 1024, // far above the disk: the disk is the limit here (reserve 2 MiB)
    flush_ms: 20,
    flush_count: 500,
    history_days: 30,
    cleanup_interval_ms: 3_600_000,
    backfill_after_ms: 3_600_000,
    memory_max: 20_000,
    retry_ms: 600_000, // the test drives the retries itself: appends alone must not retry
    logger: pino({ level: process.env.ECLOR_TEST_LOG ?? "silent" }),
  });
  s.onStored(listener); // before open(): what is queued at open is committed right away
  return s.open();
}

let n = 0;
function readings(count: number): Reading[] {
  const out: Reading[] = [];
  const ts = Date.now();
  for (let i = 0; i < count; i++)
    out.push({ device: "meter1", point: `p${n % 50}`, ts, value: n++, unit: "W", quality: "good" });
  return out;
}

it("full tmpfs: history evicted, no retry per append, partial recovery, every loss counted", () => {
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", dir]);
  mounted = true;
  writeFileSync(join(dir, "ballast"), Buffer.alloc(1024 * 1024)); // freed later: partial space

  const committed: StoredRecord[] = [];
  const keep = (r: readonly StoredRecord[]) => committed.push(...r);
  let store = open(keep);
  const readingSeqs = () => committed.filter((r) => r.reading).length;

  // Some history: readings the broker acknowledged.
  store.appendReadings(readings(5000));
  expect(store.flush()).toBe(true);
  store.markSent(1, store.stats().next_seq - 1);
  const historyRows = store.contents().rows;
  expect(historyRows).toBe(5000);

  // Fill the disk. History is evicted before anything fails.
  let produced = 5000;
  while (store.flush()) {
    store.appendReadings(readings(500));
    produced += 500;
    expect(produced).toBeLessThan(1_000_000); // the disk must fill
  }
  expect(store.error?.message).toMatch(/SQLITE_FULL|disk is full/);
  const pendingAtFull = store.stats().pending.live;
  expect(pendingAtFull).toBeGreaterThan(0);
  // All history went first (the rows left are the unsent ones).
  expect(store.contents().rows).toBe(pendingAtFull);
  expect(store.stats().commit_failures).toBe(1);

  // While full: appends are buffered, never retried one by one; memory is bounded and counted.
  for (let i = 0; i < 60; i++) {
    store.appendReadings(readings(500));
    produced += 500;
  }
  expect(store.stats().commit_failures).toBe(1);
  expect(store.stats().buffered).toBeLessThanOrEqual(20_000);
  const shed = store.stats().dropped_total;
  expect(shed).toBeGreaterThan(0);

  // A little space comes back: the retry commits what fits, chunk by chunk, and the memory loss
  // is reported at once.
  unlinkSync(join(dir, "ballast"));
  const bufferedBefore = store.stats().buffered;
  store.flush();
  expect(store.stats().buffered).toBeLessThan(bufferedBefore);
  const memoryGap = committed.find(
    (r) => r.event?.type === "gap" && r.event.data?.reason === "memory_full",
  );
  expect(memoryGap?.event?.data).toMatchObject({ count: shed });
  expect(memoryGap?.event?.data?.first_ts).toEqual(expect.any(Number));

  // Still (or again) full; the agent stops: what is buffered is lost, and counted.
  store.appendReadings(readings(20_000));
  produced += 20_000;
  store.flush();
  const lostAtClose = store.stats().buffered;
  store.close();

  // Space again; the next start reports the shutdown loss first.
  execFileSync("mount", ["-o", "remount,size=64m", dir]);
  store = open(keep);
  expect(store.flush()).toBe(true);
  const shutdownGap = committed.find(
    (r) => r.event?.type === "gap" && r.event.data?.reason === "shutdown",
  );
  expect(lostAtClose).toBeGreaterThan(0);
  expect(shutdownGap?.event?.data).toMatchObject({ count: lostAtClose });
  expect(shutdownGap?.event?.data?.last_ts).toEqual(expect.any(Number));
  // Reported once: a restart does not announce it again.
  store.close();
  const again: StoredRecord[] = [];
  store = open((r) => again.push(...r));
  store.flush();
  expect(again.filter((r) => r.event?.type === "gap")).toEqual([]);
  store.close();

  // Nothing silently lost: every reading got a seq or is counted in a gap event.
  const gaps = committed
    .filter((r) => r.event?.type === "gap")
    .reduce((a, r) => a + (r.event!.data!.count as number), 0);
  expect(readingSeqs() + gaps).toBe(produced);
});
