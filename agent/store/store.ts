/**
 * The store: group commit in front of the outbox, size bound with gap events, history cleanup,
 * driver KV state, and survival of a database that cannot be used.
 *
 * Group commit: records are buffered in memory and committed in one transaction every
 * `flush_ms` (timer armed by the first buffered record) or as soon as `flush_count` are buffered.
 * A record is acknowledged — durable against kill -9 and power loss — once `onStored` listeners
 * see it (they are called after COMMIT returned). See db.ts for the durability reasoning.
 *
 * When the database cannot be opened or written (corrupt file, read-only directory, disk full),
 * the store keeps records in memory (bounded by `memory_max`, oldest lowest-priority dropped
 * first and counted in a gap event), logs one clear error, and retries every `retry_ms`:
 * acquisition continues and the agent does not crash-loop.
 */
import type { Logger } from "pino";
import type { DriverEvent, DriverState, Reading } from "../../drivers/driver.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type Db, migrateUserVersion, openDatabase, storeError } from "./db.js";
import { KvState } from "./kv.js";
import { type DropRange, Outbox } from "./outbox.js";
import {
  PRIORITY_NAMES,
  type PendingRecord,
  type Priority,
  PRIORITIES,
  type StoredRecord,
  eventRecord,
  readingRecord,
} from "./records.js";
import { coreMigrations } from "./schema.js";

export interface StoreOptions {
  path: string;
  max_bytes: number;
  flush_ms: number;
  flush_count: number;
  history_days: number;
  cleanup_interval_ms: number;
  backfill_after_ms: number;
  memory_max: number;
  retry_ms: number;
  logger: Logger;
  /** Clock (ms), injectable for tests. */
  now?: () => number;
}

export type StoredListener = (records: readonly StoredRecord[]) => void;

export interface StoreStats {
  available: boolean;
  error?: string;
  path: string;
  bytes: number;
  max_bytes: number;
  next_seq: number;
  buffered: number;
  pending: Record<(typeof PRIORITY_NAMES)[number], number>;
  oldest_pending_ts?: number;
  dropped_total: number;
  last_cleanup?: { at: number; deleted: number };
}

/** Drop down to this share of max_bytes when full, so gap events come in chunks, not per flush. */
const DROP_TARGET = 0.95;

export class Store {
  private database?: Db;
  private box?: Outbox;
  private buffer: PendingRecord[] = [];
  private memoryDropped: { count: number; firstTs: number; lastTs: number } | undefined;
  private flushTimer?: NodeJS.Timeout;
  private immediate?: NodeJS.Immediate;
  private retryTimer?: NodeJS.Timeout;
  private cleanupTimer?: NodeJS.Timeout;
  private readonly listeners = new Set<StoredListener>();
  private lastError?: EdgeError;
  private droppedTotal = 0;
  private lastCleanup?: { at: number; deleted: number };
  private closed = false;
  readonly now: () => number;

  constructor(private readonly opts: StoreOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Open the database; on failure keep running in memory and retry. Never throws. */
  open(): this {
    this.tryOpen();
    this.cleanupTimer = setInterval(() => this.cleanup(), this.opts.cleanup_interval_ms);
    this.cleanupTimer.unref();
    return this;
  }

  get available(): boolean {
    return this.box !== undefined;
  }
  get error(): EdgeError | undefined {
    return this.lastError;
  }

  /** The better-sqlite3 handle, for components adding their own tables (see db.ts). */
  get db(): Db {
    if (!this.database) throw this.unavailable();
    return this.database;
  }
  get outbox(): Outbox {
    if (!this.box) throw this.unavailable();
    return this.box;
  }

  private unavailable(): EdgeError {
    return (
      this.lastError ??
      new EdgeError(ErrorCode.StoreUnavailable, `store database ${this.opts.path} is not open`)
    );
  }

  private tryOpen(): boolean {
    if (this.closed) return false;
    let db: Db | undefined;
    try {
      db = openDatabase(this.opts.path);
      migrateUserVersion(db, coreMigrations);
      this.box = new Outbox(db);
      this.database = db;
    } catch (e) {
      db?.close();
      this.fail(storeError(this.opts.path, e, "opening it"));
      return false;
    }
    if (this.lastError)
      this.opts.logger.info({ path: this.opts.path }, "store database is usable again");
    this.lastError = undefined;
    if (this.buffer.length > 0 || this.memoryDropped) this.flush();
    return true;
  }

  private fail(err: EdgeError): void {
    if (this.lastError?.message !== err.message) this.opts.logger.error({ err }, err.message);
    this.lastError = err;
    if (err.code === ErrorCode.StoreCorrupt && this.database) {
      this.database.close();
      this.database = undefined;
      this.box = undefined;
    }
    if (!this.retryTimer && !this.closed) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (!this.box) this.tryOpen();
        else this.flush();
      }, this.opts.retry_ms);
      this.retryTimer.unref();
    }
  }

  /** Priority of a reading: backfill when acquired long before it reached the store. */
  priorityOf(r: Reading): 1 | 2 {
    return this.now() - r.ts > this.opts.backfill_after_ms ? 2 : 1;
  }

  appendReadings(readings: readonly Reading[], prio?: 1 | 2): void {
    for (const r of readings) this.buffer.push(readingRecord(r, prio ?? this.priorityOf(r)));
    this.buffered();
  }

  appendEvent(e: DriverEvent): void {
    this.buffer.push(eventRecord(e));
    this.buffered();
  }

  /** Any pre-rendered record (command results, …): stream = topic suffix, body = JSON object. */
  appendRecord(rec: PendingRecord): void {
    this.buffer.push(rec);
    this.buffered();
  }

  private buffered(): void {
    if (this.closed) return;
    if (this.buffer.length > this.opts.memory_max) this.shedMemory();
    if (this.buffer.length >= this.opts.flush_count) {
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined;
        this.flush();
      });
    } else if (!this.flushTimer && this.buffer.length > 0) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.flush();
      }, this.opts.flush_ms);
    }
  }

  /** Memory is bounded too: drop the oldest lowest-priority buffered records, counted. */
  private shedMemory(): void {
    // Shed 5 % at once so the scan does not run again on every append.
    const excess = this.buffer.length - Math.floor(this.opts.memory_max * DROP_TARGET);
    const victims = new Set<PendingRecord>();
    for (const prio of [2, 1, 0] as const) {
      for (const r of this.buffer) {
        if (victims.size >= excess) break;
        if (r.prio === prio) victims.add(r);
      }
    }
    const d = (this.memoryDropped ??= { count: 0, firstTs: Infinity, lastTs: -Infinity });
    for (const r of victims) {
      d.count++;
      d.firstTs = Math.min(d.firstTs, r.ts);
      d.lastTs = Math.max(d.lastTs, r.ts);
    }
    this.droppedTotal += victims.size;
    this.buffer = this.buffer.filter((r) => !victims.has(r));
  }

  /** Commit everything buffered in one transaction. Returns false if the database failed. */
  flush(): boolean {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.buffer.length === 0 && !this.memoryDropped) return true;
    const box = this.box;
    const db = this.database;
    if (!box || !db) {
      this.fail(this.unavailable());
      return false;
    }
    const batch = this.buffer;
    const snap = box.snapshot();
    let stored: StoredRecord[];
    try {
      stored = db.transaction(() => {
        const out = box.insert(batch);
        if (this.memoryDropped) out.push(...box.insert([this.memoryGapEvent(this.memoryDropped)]));
        const drops = box.enforceLimit(this.opts.max_bytes, this.opts.max_bytes * DROP_TARGET);
        if (drops.length > 0) out.push(...box.insert(drops.map((d) => this.gapEvent(d))));
        return out;
      })();
    } catch (e) {
      box.restore(snap);
      this.fail(storeError(this.opts.path, e, "committing readings"));
      return false;
    }
    this.buffer = [];
    this.memoryDropped = undefined;
    if (this.lastError) {
      this.opts.logger.info({ path: this.opts.path }, "store database is writable again");
      this.lastError = undefined;
    }
    for (const l of this.listeners) {
      try {
        l(stored);
      } catch (e) {
        this.opts.logger.error({ err: e }, "a store listener failed");
      }
    }
    return true;
  }

  private gapEvent(d: DropRange): PendingRecord {
    this.droppedTotal += d.count;
    const prio = PRIORITY_NAMES[d.prio];
    const msg = `store full (max_bytes ${this.opts.max_bytes}): dropped the ${d.count} oldest unsent ${prio} records, seq ${d.first}..${d.last}`;
    this.opts.logger.warn({ gap: d }, msg);
    return eventRecord({
      ts: this.now(),
      type: "gap",
      severity: "error",
      message: msg,
      data: {
        reason: "store_full",
        priority: prio,
        count: d.count,
        first_seq: d.first,
        last_seq: d.last,
      },
    });
  }

  private memoryGapEvent(d: { count: number; firstTs: number; lastTs: number }): PendingRecord {
    const msg = `store database unavailable and memory buffer full (memory_max ${this.opts.memory_max}): dropped ${d.count} readings acquired between ${new Date(d.firstTs).toISOString()} and ${new Date(d.lastTs).toISOString()} before they got a seq`;
    this.opts.logger.warn({ count: d.count }, msg);
    return eventRecord({
      ts: this.now(),
      type: "gap",
      severity: "error",
      message: msg,
      data: {
        reason: "memory_full",
        count: d.count,
        first_ts: d.firstTs / 1000,
        last_ts: d.lastTs / 1000,
      },
    });
  }

  /** Called with every committed batch (after COMMIT). Returns an unsubscribe function. */
  onStored(listener: StoredListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Delete history older than history_days. Runs every cleanup_interval_ms; callable directly. */
  cleanup(): number {
    const box = this.box;
    const db = this.database;
    if (!box || !db) return 0;
    const cutoff = this.now() - this.opts.history_days * 86_400_000;
    let total = 0;
    try {
      // Chunks keep each transaction (and the event-loop pause) short.
      for (;;) {
        const n = db.transaction(() => box.deleteExpired(cutoff, 5000))();
        total += n;
        if (n < 5000) break;
      }
    } catch (e) {
      this.fail(storeError(this.opts.path, e, "deleting expired history"));
    }
    this.lastCleanup = { at: this.now(), deleted: total };
    this.opts.logger.info(
      { deleted: total, cutoff: new Date(cutoff).toISOString() },
      `history cleanup deleted ${total} records older than ${this.opts.history_days} days`,
    );
    return total;
  }

  /** Durable key/value state for one driver instance (DriverState). */
  kv(namespace: string): DriverState {
    return new KvState(() => this.db, namespace);
  }

  stats(): StoreStats {
    const box = this.box;
    const pending = { event: 0, live: 0, backfill: 0 };
    let oldest: number | undefined;
    if (box) {
      try {
        for (const p of PRIORITIES) {
          pending[PRIORITY_NAMES[p]] = box.pendingCount(p);
          const ts = box.oldestPendingTs(p);
          if (ts !== undefined) oldest = Math.min(oldest ?? ts, ts);
        }
      } catch {
        // stats must not throw: a failing database shows in `available`/`error`
      }
    }
    return {
      available: box !== undefined,
      ...(this.lastError ? { error: this.lastError.message } : {}),
      path: this.opts.path,
      bytes: box?.bytes ?? 0,
      max_bytes: this.opts.max_bytes,
      next_seq: box?.nextSeq ?? 0,
      buffered: this.buffer.length,
      pending,
      ...(oldest !== undefined ? { oldest_pending_ts: oldest } : {}),
      dropped_total: this.droppedTotal,
      ...(this.lastCleanup ? { last_cleanup: this.lastCleanup } : {}),
    };
  }

  /** Flush what is buffered and close the database. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    for (const t of [this.flushTimer, this.retryTimer, this.cleanupTimer]) clearTimeout(t);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.buffer.length > 0) {
      this.opts.logger.error(
        { lost: this.buffer.length },
        `store closing with ${this.buffer.length} readings that could not be committed: ${this.lastError?.message ?? "database unavailable"}`,
      );
    }
    this.database?.close();
    this.database = undefined;
    this.box = undefined;
  }
}

export type { Priority };
