/**
 * Read queries on the outbox for history, replay, export and the technician's views (SQL only;
 * reached through Store methods — nothing outside agent/store sees the database handle).
 *
 * Every query is bounded in work, not only in result size (issue 15 item 6): a filter that
 * matches nothing (a point or window without rows) must not walk a 5 M-row table in one call.
 * Pages walk the table by seq (its primary key) in bounded steps, within a time budget, and say
 * where to continue; the caller pages on until the cursor is null. See bench/history.ts.
 */
import type { Statement } from "better-sqlite3";
import type { Db } from "./db.js";
import type { HistoryRow, OutboxRow } from "./outbox.js";
import type { Priority } from "./records.js";

/**
 * A page walks the table in steps of STEP_SEQS seq numbers (a fraction of a ms each on an idle
 * gateway CPU) until it has `limit` rows, reaches the end, or has used BUDGET_MS of the event
 * loop — so its cost is bounded by time on any machine, and at most one step beyond it.
 */
export const STEP_SEQS = 2000;
export const BUDGET_MS = 8;

export interface RowFilter {
  /** Exact `<device>/<point>`. */
  name?: string;
  /** Every point of a device. */
  device?: string;
  /** A point name on every device. */
  point?: string;
  /** Acquisition time window, ms: from ≤ ts < to (either may be open). */
  fromTs?: number;
  toTs?: number;
  /** Readings only (stream telemetry). */
  telemetryOnly?: boolean;
}

export interface Page<R> {
  rows: R[];
  /** Continue after this seq; null when the table was walked to its end. */
  next: number | null;
}

export class Queries {
  private readonly maxSeq;
  private readonly minSeq;
  private readonly count;
  private readonly latest;
  private readonly oldestHistory;
  private readonly range;
  private readonly cache = new Map<string, Statement<unknown[]>>();

  constructor(private readonly db: Db) {
    this.maxSeq = db.prepare("SELECT max(seq) FROM outbox").pluck();
    this.minSeq = db.prepare("SELECT min(seq) FROM outbox").pluck();
    this.count = db.prepare("SELECT count(*) FROM outbox").pluck();
    this.latest = db.prepare(
      "SELECT seq, ts, name, body FROM outbox WHERE name IS NOT NULL ORDER BY seq DESC LIMIT ?",
    );
    this.oldestHistory = db
      .prepare(
        "SELECT ts FROM outbox WHERE (prio = 0 AND seq <= ?) OR (prio = 1 AND seq <= ?) OR (prio = 2 AND seq <= ?) ORDER BY seq LIMIT 1",
      )
      .pluck();
    this.range = db.prepare(
      "SELECT seq, stream, body FROM outbox WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
    );
  }

  /** Rows matching `f` after seq `after`, at most `limit`, examining at most SCAN_SEQS seqs. */
  page(f: RowFilter, after: number, limit: number): Page<HistoryRow> {
    const where = ["seq > ?", "seq <= ?"];
    const args: (string | number)[] = [];
    const cond = (sql: string, ...values: (string | number)[]) => {
      where.push(sql);
      args.push(...values);
    };
    if (f.telemetryOnly) cond("stream = 'telemetry'");
    else cond("name IS NOT NULL");
    if (f.fromTs !== undefined) cond("ts >= ?", f.fromTs);
    if (f.toTs !== undefined) cond("ts < ?", f.toTs);
    if (f.name !== undefined) cond("name = ?", f.name);
    else if (f.device !== undefined)
      cond("substr(name, 1, ?) = ?", f.device.length + 1, `${f.device}/`);
    if (f.point !== undefined) {
      cond("substr(name, -?) = ?", f.point.length + 1, `/${f.point}`);
    }
    const sql = `SELECT seq, prio, stream, ts, name, body FROM outbox WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`;
    let stmt = this.cache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<unknown[]>(sql);
      if (this.cache.size > 64) this.cache.clear();
      this.cache.set(sql, stmt);
    }
    const max = (this.maxSeq.get() as number | null) ?? 0;
    // Skip the seqs below the oldest stored row (deleted history) without examining them.
    let from = Math.max(after, ((this.minSeq.get() as number | null) ?? 1) - 1);
    const rows: HistoryRow[] = [];
    const t0 = performance.now();
    while (from < max) {
      const end = Math.min(max, from + STEP_SEQS);
      for (const r of stmt.all(from, end, ...args, limit - rows.length) as HistoryRow[])
        rows.push(r);
      if (rows.length >= limit) return { rows, next: rows[rows.length - 1]!.seq };
      from = end;
      if (performance.now() - t0 >= BUDGET_MS) break;
    }
    return { rows, next: from < max ? from : null };
  }

  /** Stored rows with from ≤ seq ≤ to (replay), at most `limit`. */
  rangeRows(fromSeq: number, toSeq: number, limit: number): OutboxRow[] {
    return this.range.all(fromSeq, toSeq, limit) as OutboxRow[];
  }

  /** The newest `limit` reading rows, newest first. */
  latestRows(limit: number): Pick<HistoryRow, "seq" | "ts" | "name" | "body">[] {
    return this.latest.all(limit) as Pick<HistoryRow, "seq" | "ts" | "name" | "body">[];
  }

  totalRows(): number {
    return this.count.get() as number;
  }

  /** Acquisition time of the oldest history row (at or below its priority's watermark). */
  oldestHistoryTs(sent: readonly number[]): number | undefined {
    return (
      (this.oldestHistory.get(...(sent as [number, number, number])) as number | null) ?? undefined
    );
  }

  /** Highest seq ever assigned is `nextSeq - 1`; used to tell "never assigned" from "gone". */
  static neverAssigned(
    fromSeq: number,
    toSeq: number,
    nextSeq: number,
  ): { from_seq: number; to_seq: number } | null {
    const first = Math.max(fromSeq, nextSeq);
    return first <= toSeq ? { from_seq: first, to_seq: toSeq } : null;
  }
}

export type { Priority };
