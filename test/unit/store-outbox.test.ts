/**
 * The store against real SQLite files in temp dirs: seq, group commit, priorities, size bound
 * with gap events, history cleanup, migrations, KV state, unusable database files.
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Reading } from "../../drivers/driver.js";
import { migrate, withNormalSync } from "../../agent/store/db.js";
import { PRIORITY_NAMES, type StoredRecord } from "../../agent/store/records.js";
import { coreMigrations } from "../../agent/store/schema.js";
import { Store, type StoreOptions } from "../../agent/store/store.js";
import { waitFor } from "../helpers/ports.js";

let dir: string;
const open: Store[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "eclor-store-"));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

const silent = pino({ level: "silent" });

function makeStore(over: Partial<StoreOptions> = {}): Store {
  const s = new Store({
    path: join(dir, "store.db"),
    max_bytes: 64 * 1024 * 1024,
    flush_ms: 20,
    flush_count: 1000,
    history_days: 30,
    cleanup_interval_ms: 3_600_000,
    backfill_after_ms: 3_600_000,
    memory_max: 100_000,
    retry_ms: 100,
    logger: silent,
    ...over,
  }).open();
  open.push(s);
  return s;
}

function reading(i: number, ts = Date.now()): Reading {
  return { device: "meter1", point: "power", ts, value: i, unit: "W", quality: "good" };
}

function closeStore(s: Store): void {
  s.close();
  open.splice(open.indexOf(s), 1);
}

function collect(s: Store): StoredRecord[] {
  const got: StoredRecord[] = [];
  s.onStored((r) => got.push(...r));
  return got;
}

describe("seq", () => {
  it("is strictly increasing and never reused across restarts, even after every row was deleted", () => {
    let s = makeStore();
    s.appendReadings([reading(1), reading(2), reading(3)]);
    s.flush();
    expect(s.outbox.range(1, 100).map((r) => r.seq)).toEqual([1, 2, 3]);
    // Everything sent, then deleted as expired history.
    withNormalSync(s.db, () => s.outbox.markSent(1, 3));
    s.db.exec("DELETE FROM outbox");
    closeStore(s);
    s = makeStore();
    const got = collect(s);
    s.appendReadings([reading(4)]);
    s.flush();
    expect(got.map((r) => r.seq)).toEqual([4]);
  });

  it("a failed commit does not consume seqs", () => {
    const s = makeStore();
    s.appendReadings([reading(1)]);
    s.flush();
    s.db.exec(
      "CREATE TRIGGER boom BEFORE INSERT ON outbox WHEN NEW.body LIKE '%\"v\":666%' BEGIN SELECT RAISE(ABORT, 'boom'); END",
    );
    s.appendReadings([reading(2), reading(666)]);
    expect(s.flush()).toBe(false);
    expect(s.stats().buffered).toBe(2);
    s.db.exec("DROP TRIGGER boom");
    const got = collect(s);
    expect(s.flush()).toBe(true);
    expect(got.map((r) => r.seq)).toEqual([2, 3]);
  });
});

describe("group commit", () => {
  it("commits after flush_ms, not per reading", async () => {
    const s = makeStore({ flush_ms: 50 });
    const got = collect(s);
    s.appendReadings([reading(1)]);
    s.appendReadings([reading(2)]);
    expect(got).toHaveLength(0); // still in the group-commit buffer
    await waitFor(() => got.length === 2, 2000, "timer flush");
    expect(got.map((r) => r.seq)).toEqual([1, 2]);
  });

  it("commits as soon as flush_count readings are buffered", async () => {
    const s = makeStore({ flush_ms: 60_000, flush_count: 10 });
    const got = collect(s);
    s.appendReadings(Array.from({ length: 10 }, (_, i) => reading(i)));
    await waitFor(() => got.length === 10, 2000, "count flush");
  });

  it("what was committed survives closing and reopening the file", () => {
    let s = makeStore();
    s.appendReadings(Array.from({ length: 50 }, (_, i) => reading(i)));
    s.appendEvent({
      ts: Date.now(),
      type: "device_offline",
      severity: "warning",
      device: "meter1",
      message: "no answer",
    });
    closeStore(s); // close flushes
    s = makeStore();
    expect(s.stats().pending).toEqual({ event: 1, live: 50, backfill: 0 });
    const rows = s.outbox.range(1, 1000);
    expect(rows).toHaveLength(51);
    expect(JSON.parse(rows[0]!.body)).toEqual({
      n: "meter1/power",
      t: rows[0]!.ts / 1000,
      u: "W",
      v: 0,
    });
  });
});

describe("priorities", () => {
  it("events first, live telemetry next, old readings last (backfill)", () => {
    const s = makeStore({ backfill_after_ms: 60_000 });
    s.appendReadings([reading(1), reading(2, Date.now() - 3_600_000)]);
    s.appendEvent({ ts: Date.now(), type: "device_online", severity: "info", message: "back" });
    s.flush();
    expect(s.outbox.fetch(0, 0, 10).map((r) => r.seq)).toEqual([3]);
    expect(s.outbox.fetch(1, 0, 10).map((r) => r.seq)).toEqual([1]);
    expect(s.outbox.fetch(2, 0, 10).map((r) => r.seq)).toEqual([2]);
  });
});

describe("size bound", () => {
  it("drops the oldest lowest-priority unsent readings and queues a gap event with the exact count", () => {
    const max = 1_048_576;
    const s = makeStore({ max_bytes: max, backfill_after_ms: 60_000 });
    const got = collect(s);
    const old = Date.now() - 7_200_000;
    // 3000 backfill readings, then live readings until well past the bound.
    for (let i = 0; i < 3; i++) {
      s.appendReadings(Array.from({ length: 1000 }, (_, j) => reading(i * 1000 + j, old)));
      s.flush();
    }
    let produced = 3000;
    while (produced < 20_000) {
      s.appendReadings(Array.from({ length: 1000 }, (_, j) => reading(produced + j)));
      s.flush();
      produced += 1000;
    }
    expect(s.outbox.bytes).toBeLessThanOrEqual(max);
    expect(s.outbox.bytes).toBe(s.outbox.recount()); // the persisted counter matches the rows
    const gaps = got
      .filter((r) => r.event?.type === "gap")
      .map(
        (r) =>
          r.event!.data as { count: number; first_seq: number; last_seq: number; priority: string },
      );
    expect(gaps.length).toBeGreaterThan(0);
    // Backfill went first: the first gaps are backfill, in seq order from seq 1.
    expect(gaps[0]!.priority).toBe("backfill");
    expect(gaps[0]!.first_seq).toBe(1);
    const dropped = gaps.reduce((a, g) => a + g.count, 0);
    const pending = s.stats().pending;
    // Nothing silently lost: every reading is either still pending or counted in a gap event.
    expect(pending.live + pending.backfill + dropped).toBe(produced);
    expect(pending.event).toBe(gaps.length);
    // The dropped ranges are exactly the missing seqs of their priority (issue 19 item 9): every
    // seq of that priority inside a gap's range is gone and counted, and every seq gone from the
    // store lies in a gap of its own priority.
    expect(gaps.some((g) => g.priority === "live")).toBe(true);
    const remaining = new Set(s.outbox.range(1, 1_000_000, 1_000_000).map((r) => r.seq));
    const prioOf = new Map(got.map((r) => [r.seq, PRIORITY_NAMES[r.prio]]));
    const wrong: string[] = [];
    for (const g of gaps) {
      let inRange = 0;
      for (let q = g.first_seq; q <= g.last_seq; q++) {
        if (prioOf.get(q) !== g.priority) continue;
        inRange++;
        if (remaining.has(q)) wrong.push(`seq ${q} is in a ${g.priority} gap but still stored`);
      }
      if (inRange !== g.count)
        wrong.push(`gap ${g.first_seq}..${g.last_seq}: ${inRange} ≠ ${g.count}`);
    }
    for (const [q, p] of prioOf) {
      if (remaining.has(q)) continue;
      if (!gaps.some((g) => g.priority === p && g.first_seq <= q && q <= g.last_seq))
        wrong.push(`seq ${q} (${p}) is gone but in no gap`);
    }
    expect(wrong).toEqual([]);
  });

  it("sent history goes before any unsent reading", () => {
    const max = 1_048_576;
    const s = makeStore({ max_bytes: max });
    s.appendReadings(Array.from({ length: 5000 }, (_, j) => reading(j)));
    s.flush();
    withNormalSync(s.db, () => s.outbox.markSent(1, 5000));
    const got = collect(s);
    let produced = 0;
    while (s.outbox.bytes < max * 0.9) {
      s.appendReadings(Array.from({ length: 1000 }, (_, j) => reading(j)));
      s.flush();
      produced += 1000;
    }
    s.appendReadings(Array.from({ length: 2000 }, (_, j) => reading(j)));
    s.flush();
    produced += 2000;
    expect(got.some((r) => r.event?.type === "gap")).toBe(false);
    expect(s.stats().pending.live).toBe(produced);
  });
});

describe("history cleanup", () => {
  it("deletes sent readings older than history_days, keeps newer history and everything unsent", () => {
    let now = Date.UTC(2026, 0, 31);
    const s = makeStore({ history_days: 7, now: () => now, backfill_after_ms: 31_536_000_000 });
    const day = 86_400_000;
    s.appendReadings([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => reading(d, now - (10 - d) * day)));
    s.flush();
    withNormalSync(s.db, () => s.outbox.markSent(1, 8)); // seq 9, 10 unsent
    // Acquired 10, 9 and 8 days ago; exactly 7 days is not older than history_days.
    expect(s.cleanup()).toBe(3);
    expect(s.outbox.range(1, 100).map((r) => r.seq)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    now += 30 * day;
    expect(s.cleanup()).toBe(5); // history only; unsent 9 and 10 stay
    expect(s.outbox.range(1, 100).map((r) => r.seq)).toEqual([9, 10]);
  });

  it("runs on its own every cleanup_interval_ms", async () => {
    const s = makeStore({ cleanup_interval_ms: 1000, history_days: 0 });
    s.appendReadings([reading(1, Date.now() - 1000)]);
    s.flush();
    withNormalSync(s.db, () => s.outbox.markSent(1, 1));
    await waitFor(() => s.stats().last_cleanup, 3000, "scheduled cleanup");
    expect(s.stats().last_cleanup!.deleted).toBe(1);
    expect(s.outbox.range(1, 10)).toHaveLength(0);
  });
});

describe("migrations", () => {
  it("core schema uses user_version; components register theirs once", () => {
    const s = makeStore();
    expect(s.db.pragma("user_version", { simple: true })).toBe(coreMigrations.length);
    const steps = [
      "CREATE TABLE journal (id TEXT PRIMARY KEY)",
      "ALTER TABLE journal ADD COLUMN result TEXT",
    ];
    expect(migrate(s.db, "commands", steps)).toBe(2);
    expect(migrate(s.db, "commands", steps)).toBe(2); // idempotent
    s.db.prepare("INSERT INTO journal (id, result) VALUES ('a', 'ok')").run();
    expect(() => migrate(s.db, "commands", steps.slice(0, 1))).toThrow(/EE0202.*newer eclor-edge/);
  });

  it("refuses a store written by a newer agent", () => {
    const db = new Database(join(dir, "store.db"));
    db.pragma("user_version = 99");
    db.close();
    const s = makeStore();
    expect(s.available).toBe(false);
    expect(s.error?.message).toMatch(/EE0202 store schema is version 99/);
  });
});

describe("driver state (kv)", () => {
  it("is durable, namespaced and prefix-listable", () => {
    let s = makeStore();
    const a = s.kv("driver:lora");
    const b = s.kv("driver:other");
    a.set("session/0011", { fcnt: 7 });
    a.set("session/0012", { fcnt: 9 });
    a.set("nonce_100%", [1, 2]);
    b.set("session/0011", "x");
    a.delete("session/0012");
    closeStore(s);
    s = makeStore();
    const a2 = s.kv("driver:lora");
    expect(a2.get("session/0011")).toEqual({ fcnt: 7 });
    expect(a2.get("session/0012")).toBeUndefined();
    expect(a2.keys("session/")).toEqual(["session/0011"]);
    expect(a2.keys()).toEqual(["nonce_100%", "session/0011"]);
    expect(s.kv("driver:other").get("session/0011")).toBe("x");
  });
});

describe("unusable database", () => {
  it("a corrupt file is reported clearly, readings are kept in memory, and the store recovers when the file is replaced", async () => {
    const path = join(dir, "store.db");
    writeFileSync(
      path,
      "this is not a SQLite database, just a file that got overwritten ".repeat(100),
    );
    const s = makeStore();
    expect(s.available).toBe(false);
    expect(s.error?.message).toMatch(
      /EE0202 store database .* is corrupt or not a SQLite file.*move the file aside/,
    );
    expect(() => s.kv("x").get("k")).toThrow(/EE0202/);
    s.appendReadings([reading(1), reading(2)]);
    expect(s.flush()).toBe(false);
    expect(s.stats().buffered).toBe(2);
    const got = collect(s);
    rmSync(path); // the technician moved it aside
    await waitFor(() => got.length === 2, 3000, "recovery");
    expect(got.map((r) => r.seq)).toEqual([1, 2]);
  });

  it("memory is bounded while the database is unusable, and the loss is counted in a gap event", async () => {
    const path = join(dir, "store.db");
    writeFileSync(path, "garbage ".repeat(1000));
    const s = makeStore({ memory_max: 1000 });
    s.appendReadings(Array.from({ length: 1500 }, (_, i) => reading(i)));
    const buffered = s.stats().buffered;
    expect(buffered).toBeLessThanOrEqual(1000);
    const got = collect(s);
    rmSync(path);
    await waitFor(() => got.length > 0, 3000, "recovery");
    const gap = got.find((r) => r.event?.type === "gap")!;
    expect((gap.event!.data as { count: number }).count).toBe(1500 - buffered);
    expect(got.filter((r) => r.reading).length).toBe(buffered);
    // The survivors are the newest readings.
    expect(got.find((r) => r.reading)!.reading!.value).toBe(1500 - buffered);
  });
});
