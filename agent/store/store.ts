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
 * first and counted in a gap event), logs one clear error, and retries every `retry_ms` — only
 * then, not at every append: acquisition continues and the agent does not crash-loop. Commits go
 * in chunks of `flush_count`, so a little free space lets part of the buffer in; on SQLITE_FULL
 * the reserve file is released and sent history evicted (reserve.ts); readings lost at shutdown
 * are counted in the note (sidecar.ts) and reported at the next start.
 *
 * Every database has an epoch (schema.ts migration 3): `(gateway, epoch, seq)` is unique even
 * when a replaced database starts its seqs at 1 again; a new epoch is announced by a
 * `store_epoch` event (store-events.ts). Queries are Store methods (queries.ts): nothing outside
 * agent/store touches the outbox's SQL.
 */
import type { Logger } from "pino";
import type { DriverEvent, DriverState, Reading } from "../../drivers/driver.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type Db, migrateUserVersion, openDatabase, storeError, withNormalSync } from "./db.js";
import { KvState } from "./kv.js";
import { type DropRange, type HistoryRow, Outbox, type OutboxRow, ROW_OVERHEAD } from "./outbox.js";
import {
  PRIORITY_NAMES,
  type PendingRecord,
  type Priority,
  PRIORITIES,
  type StoredRecord,
  eventRecord,
  readingRecord,
} from "./records.js";
import { type Page, Queries, type RowFilter } from "./queries.js";
import { coreMigrations } from "./schema.js";
import { epochEvent, lossGap, storeFullGap } from "./store-events.js";
import { Reserve } from "./reserve.js";
import { type Loss, mergeLoss, Sidecar } from "./sidecar.js";

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
  /** Records not yet acknowledged by the broker: pending of every priority + buffered. */
  backlog: number;
  oldest_pending_ts?: number;
  dropped_total: number;
  /** Commits refused by the database (disk full, I/O error…) since the agent started. */
  commit_failures: number;
  last_cleanup?: { at: number; deleted: number };
}

/** Drop down to this share of max_bytes when full, so gap events come in chunks, not per flush. */
const DROP_TARGET = 0.95;

export class Store {
  private database?: Db;
  private box?: Outbox;
  private queries?: Queries;
  private buffer: PendingRecord[] = [];
  private memoryDropped: Loss | undefined;
  /** Readings lost by an earlier run (shutdown while unwritable), from the note; queued once. */
  private earlierLoss: Loss | undefined;
  private epochId?: string;
  /** The `store_epoch` event of a new epoch, until it is committed. */
  private announce?: PendingRecord;
  private readonly note?: Sidecar;
  private readonly reserve?: Reserve;
  private flushTimer?: NodeJS.Timeout;
  private immediate?: NodeJS.Immediate;
  private retryTimer?: NodeJS.Timeout;
  private cleanupTimer?: NodeJS.Timeout;
  private readonly listeners = new Set<StoredListener>();
  private lastError?: EdgeError;
  private droppedTotal = 0;
  private commitFailures = 0;
  private lastCleanup?: { at: number; deleted: number };
  private closed = false;
  readonly now: () => number;

  constructor(private readonly opts: StoreOptions) {
    this.now = opts.now ?? Date.now;
    if (opts.path !== ":memory:") {
      this.note = new Sidecar(`${opts.path}.note`);
      // 1/64 of the bound, 1..16 MiB: room for a WAL checkpoint and the eviction on a full disk.
      const size = Math.min(16 << 20, Math.max(1 << 20, Math.floor(opts.max_bytes / 64)));
      this.reserve = new Reserve(`${opts.path}.reserve`, size);
    }
  }

  /**
   * The store epoch: a random id created with the database file. `(gateway, epoch, seq)` is
   * unique forever, even when a replaced database starts its seqs at 1 again (mqtt-api.md §7).
   */
  get epoch(): string {
    if (!this.epochId) throw this.unavailable();
    return this.epochId;
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

  /**
   * The better-sqlite3 handle, ONLY for components keeping their own tables (journal, audit,
   * config versions: see db.ts `migrate`). Outbox rows are reached through Store methods.
   */
  get db(): Db {
    if (!this.database) throw this.unavailable();
    return this.database;
  }
  get outbox(): Outbox {
    if (!this.box) throw this.unavailable();
    return this.box;
  }
  private get q(): Queries {
    if (!this.queries) throw this.unavailable();
    return this.queries;
  }

  /** The uplink's PUBACK watermark of `prio` (a tiny transaction without fsync, db.ts). */
  markSent(prio: Priority, upTo: number): void {
    const box = this.outbox;
    withNormalSync(this.db, () => box.markSent(prio, upTo));
  }

  /** One page of stored readings matching `f` after seq `after` (bounded work, queries.ts). */
  readingsPage(f: RowFilter, after: number, limit: number): Page<HistoryRow> {
    return this.q.page(f, after, limit);
  }

  /** Stored records with from ≤ seq ≤ to (pending or history), for replay. */
  recordsInRange(fromSeq: number, toSeq: number, limit: number): OutboxRow[] {
    return this.q.rangeRows(fromSeq, toSeq, limit);
  }

  /** The newest reading rows, newest first (latest values known before this start). */
  latestReadingRows(limit: number): Pick<HistoryRow, "seq" | "ts" | "name" | "body">[] {
    return this.q.latestRows(limit);
  }

  /** Seqs of the range that this epoch never assigned (null when all were). */
  neverAssigned(fromSeq: number, toSeq: number): { from_seq: number; to_seq: number } | null {
    return Queries.neverAssigned(fromSeq, toSeq, this.outbox.nextSeq);
  }

  /** Rows stored (pending + history) and the oldest history time. */
  contents(): { rows: number; oldestHistoryTs?: number } {
    const box = this.outbox;
    const ts = this.q.oldestHistoryTs(PRIORITIES.map((p) => box.sentUpTo(p)));
    return { rows: this.q.totalRows(), ...(ts !== undefined ? { oldestHistoryTs: ts } : {}) };
  }

  /** Delete sent history acquired before `cutoffTs` in short transactions; returns the count. */
  deleteHistoryBefore(cutoffTs: number): number {
    const box = this.outbox;
    const db = this.db;
    let total = 0;
    for (;;) {
      // Chunks keep each transaction (and the event-loop pause) short.
      const n = db.transaction(() => box.deleteExpired(cutoffTs, 5000))();
      total += n;
      if (n < 5000) return total;
    }
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
      this.queries = new Queries(db);
      this.database = db;
      this.loadEpoch(db);
      this.reserve?.ensure();
    } catch (e) {
      db?.close();
      this.fail(storeError(this.opts.path, e, "opening it"));
      return false;
    }
    if (this.lastError)
      this.opts.logger.info({ path: this.opts.path }, "store database is usable again");
    this.lastError = undefined;
    if (this.buffer.length > 0 || this.memoryDropped || this.announce || this.earlierLoss)
      this.flush();
    return true;
  }

  /** Read the epoch; queue its announcement if it is new to this box (see sidecar.ts). */
  private loadEpoch(db: Db): void {
    const info = new Map(
      (db.prepare("SELECT key, value FROM info").all() as { key: string; value: string }[]).map(
        (r) => [r.key, r.value],
      ),
    );
    const epoch = info.get("epoch")!;
    const firstSeq = Number(info.get("epoch_first_seq") ?? 1);
    this.epochId = epoch;
    const note = this.note?.read() ?? {};
    this.earlierLoss = note.lost;
    const upgraded = info.get("announce") === "upgraded";
    const replaced = note.epoch !== undefined && note.epoch !== epoch;
    this.announce = undefined;
    if (upgraded || replaced) {
      const previous = replaced ? { epoch: note.epoch!, nextSeq: note.nextSeq } : undefined;
      this.announce = epochEvent(epoch, firstSeq, previous, this.now());
      this.opts.logger.warn({ epoch, previous: note.epoch }, this.announce.event!.message);
    } else this.writeNote();
  }

  /** Record the epoch, the seq reached and any uncounted loss beside the database. */
  private writeNote(lost?: Loss): boolean {
    if (!this.note) return false;
    const note = this.note.read();
    // While the announcement is pending the note keeps the previous epoch (a crash before the
    // event is committed announces it again at the next start).
    if (this.epochId && !this.announce) {
      note.epoch = this.epochId;
      note.nextSeq = this.box?.nextSeq ?? note.nextSeq;
    }
    if (lost !== undefined) note.lost = lost;
    else if (!this.earlierLoss) delete note.lost;
    return this.note.write(note);
  }

  private fail(err: EdgeError): void {
    if (this.lastError?.message !== err.message) this.opts.logger.error({ err }, err.message);
    this.lastError = err;
    if (err.code === ErrorCode.StoreCorrupt && this.database) {
      this.database.close();
      this.database = undefined;
      this.box = undefined;
      this.queries = undefined;
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
    // While the database refuses writes, only the retry timer (retry_ms) tries again: a flush
    // per append on a full disk cost most of a core and starved acquisition (issue 15 item 2).
    if (this.lastError) return;
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

  /**
   * Commit what is buffered, in transactions of at most `flush_count` records (so a little free
   * space lets part of a large buffer in). On SQLITE_FULL, already-sent history is evicted once
   * and the chunk retried. Returns false if a chunk could not be committed (the rest stays
   * buffered and the retry timer tries again after retry_ms).
   */
  flush(): boolean {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.hasWork()) return true;
    const box = this.box;
    const db = this.database;
    if (!box || !db) {
      this.fail(this.unavailable());
      return false;
    }
    const stored: StoredRecord[] = [];
    const chunkSize = Math.max(1, this.opts.flush_count);
    let done = 0;
    let ok = true;
    let evicted = false;
    while (done < this.buffer.length || this.hasSideRecords()) {
      const chunk = this.buffer.slice(done, done + chunkSize);
      const side = this.sideRecords();
      const snap = box.snapshot();
      try {
        stored.push(...db.transaction(() => this.commitChunk(box, db, side.records, chunk))());
        side.committed();
        done += chunk.length;
      } catch (e) {
        box.restore(snap);
        const err = storeError(this.opts.path, e, "committing readings");
        if (
          !evicted &&
          (err.details as { sqlite?: string } | undefined)?.sqlite === "SQLITE_FULL"
        ) {
          evicted = true;
          if (this.evictForSpace(box, db, chunk)) continue;
        }
        this.commitFailures++;
        this.fail(err);
        ok = false;
        break;
      }
    }
    if (done > 0) this.buffer = done >= this.buffer.length ? [] : this.buffer.slice(done);
    if (ok && this.lastError) {
      this.opts.logger.info({ path: this.opts.path }, "store database is writable again");
      this.lastError = undefined;
      this.reserve?.ensure();
      if (this.buffer.length > 0) this.buffered();
    }
    if (stored.length > 0) this.notify(stored);
    return ok;
  }

  private hasSideRecords(): boolean {
    return !!(this.memoryDropped || this.earlierLoss || this.announce);
  }
  private hasWork(): boolean {
    return this.buffer.length > 0 || this.hasSideRecords();
  }

  /** Records about the store itself that wait for the next commit, and what to do after it. */
  private sideRecords(): { records: PendingRecord[]; committed(): void } {
    const records: PendingRecord[] = [];
    const announced = this.announce;
    const memory = this.memoryDropped;
    const earlier = this.earlierLoss;
    // Events about the store itself go first: they explain what follows.
    if (announced) records.push(announced);
    if (memory) records.push(this.lossGapEvent("memory_full", memory));
    if (earlier) records.push(this.lossGapEvent("shutdown", earlier));
    return {
      records,
      committed: () => {
        if (announced) this.announce = undefined;
        if (memory) this.memoryDropped = undefined;
        if (earlier) this.earlierLoss = undefined;
        if (announced || earlier) this.writeNote();
      },
    };
  }

  /** One transaction: the side records, a chunk of the buffer, and the size bound. */
  private commitChunk(
    box: Outbox,
    db: Db,
    side: readonly PendingRecord[],
    chunk: readonly PendingRecord[],
  ): StoredRecord[] {
    const out = box.insert(side.length > 0 ? [...side, ...chunk] : chunk);
    if (side.some((r) => r.event?.type === "store_epoch"))
      db.prepare("DELETE FROM info WHERE key = 'announce'").run();
    const drops = box.enforceLimit(this.opts.max_bytes, this.opts.max_bytes * DROP_TARGET);
    if (drops.length > 0) out.push(...box.insert(drops.map((d) => this.gapEvent(d))));
    return out;
  }

  /**
   * SQLITE_FULL: make room. The WAL is checkpointed and truncated first (its file holds up to
   * wal_autocheckpoint pages, ~4 MB, that the failed commit could not extend; without this even
   * the DELETE below cannot commit), then already-sent history is deleted, oldest first, and the
   * WAL checkpointed again so the freed pages are reusable by the retried chunk
   * (https://www.sqlite.org/wal.html#avoiding_excessively_large_wal_files).
   * Returns true if there is reason to retry the chunk.
   */
  private evictForSpace(box: Outbox, db: Db, chunk: readonly PendingRecord[]): boolean {
    const checkpoint = (): boolean => {
      try {
        const r = db.pragma("wal_checkpoint(TRUNCATE)") as { busy: number }[];
        return r[0]?.busy === 0;
      } catch {
        return false;
      }
    };
    if (this.reserve?.release())
      this.opts.logger.warn(
        { reserve: this.reserve.path },
        `disk full: released the store's reserve (${this.reserve.bytes} bytes) to checkpoint and evict sent history`,
      );
    let progress = checkpoint();
    let need = 0;
    for (const r of chunk) need += r.body.length + (r.name?.length ?? 0) + ROW_OVERHEAD;
    // Twice the chunk, and at least 1 % of the bound: freed pages are reused by SQLite, and
    // evicting in steps this size keeps the number of (costly) attempts on a full disk low.
    const want = Math.max(2 * need, Math.floor(this.opts.max_bytes / 100));
    const snap = box.snapshot();
    try {
      const freed = db.transaction(() => box.evictSent(want))();
      if (freed > 0) {
        progress = true;
        this.opts.logger.warn(
          { evicted: freed },
          `disk full: deleted ${freed} records of already-sent history to make room for new readings`,
        );
        checkpoint();
      }
    } catch (e) {
      box.restore(snap);
      this.opts.logger.warn({ err: e }, "disk full and the sent history could not be evicted");
    }
    return progress;
  }

  private notify(stored: StoredRecord[]): void {
    for (const l of this.listeners) {
      try {
        l(stored);
      } catch (e) {
        this.opts.logger.error({ err: e }, "a store listener failed");
      }
    }
  }

  private gapEvent(d: DropRange): PendingRecord {
    this.droppedTotal += d.count;
    const rec = storeFullGap(d, this.opts.max_bytes, this.now());
    this.opts.logger.warn({ gap: d }, rec.event!.message);
    return rec;
  }

  private lossGapEvent(reason: "memory_full" | "shutdown", d: Loss): PendingRecord {
    const rec = lossGap(reason, d, this.opts.memory_max, this.now());
    this.opts.logger.warn({ count: d.count, reason }, rec.event!.message);
    return rec;
  }

  /** Called with every committed batch (after COMMIT). Returns an unsubscribe function. */
  onStored(listener: StoredListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Delete history older than history_days. Runs every cleanup_interval_ms; callable directly. */
  cleanup(): number {
    if (!this.box) return 0;
    const cutoff = this.now() - this.opts.history_days * 86_400_000;
    let total = 0;
    try {
      total = this.deleteHistoryBefore(cutoff);
    } catch (e) {
      this.fail(storeError(this.opts.path, e, "deleting expired history"));
    }
    this.lastCleanup = { at: this.now(), deleted: total };
    this.writeNote(); // the seq reached, for the announcement of a replaced database
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
      backlog: pending.event + pending.live + pending.backfill + this.buffer.length,
      ...(oldest !== undefined ? { oldest_pending_ts: oldest } : {}),
      dropped_total: this.droppedTotal,
      commit_failures: this.commitFailures,
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
    let lost = mergeLoss(this.earlierLoss, this.memoryDropped);
    if (this.buffer.length > 0) {
      let firstTs = Infinity;
      let lastTs = -Infinity;
      for (const r of this.buffer) {
        firstTs = Math.min(firstTs, r.ts);
        lastTs = Math.max(lastTs, r.ts);
      }
      lost = mergeLoss(lost, { count: this.buffer.length, firstTs, lastTs });
      this.droppedTotal += this.buffer.length;
    }
    if (lost) {
      // Counted in the note (written in place, works on a full disk): the next start queues a
      // gap event with the count and time range (issue 15 item 2).
      const kept = this.writeNote(lost);
      this.opts.logger.error(
        { lost: lost.count },
        `store closing with ${lost.count} readings that could not be committed: ${this.lastError?.message ?? "database unavailable"}${kept ? "; the loss is counted and reported in a gap event at the next start" : ""}`,
      );
    } else this.writeNote();
    this.note?.close();
    this.database?.close();
    this.database = undefined;
    this.box = undefined;
    this.queries = undefined;
  }
}

export type { Priority };
