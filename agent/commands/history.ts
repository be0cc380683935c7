/**
 * `history` and `replay` on the store's outbox table (pending and sent rows alike: the store
 * keeps sent readings as history for `store.history_days`). Records are returned and republished
 * exactly as stored — the same SenML body with its `seq` — so the hypervisor can dedupe by seq.
 */
import type { Database } from "better-sqlite3";
import { withSeq } from "../store/records.js";
import type { ResultOf } from "./schemas.js";
import type { HistoryQuery } from "./service.js";

interface Row {
  seq: number;
  stream: string;
  body: string;
}

export function queryHistory(db: Database, q: HistoryQuery): ResultOf<"history"> {
  const where = ["stream = 'telemetry'", "ts >= ?", "ts < ?", "seq > ?"];
  const args: (string | number)[] = [q.from, q.to, q.afterSeq ?? 0];
  if (q.device !== undefined && q.point !== undefined) {
    where.push("name = ?");
    args.push(`${q.device}/${q.point}`);
  } else if (q.device !== undefined) {
    // Device ids may contain '_', a LIKE wildcard: escape it.
    where.push("name LIKE ? ESCAPE '\\'");
    args.push(`${q.device.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`);
  }
  const rows = db
    .prepare(
      `SELECT seq, stream, body FROM outbox WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`,
    )
    .all(...args, q.limit + 1) as Row[];
  const more = rows.length > q.limit;
  const page = more ? rows.slice(0, q.limit) : rows;
  return {
    records: page.map(
      (r) => JSON.parse(withSeq(r.seq, r.body)) as ResultOf<"history">["records"][number],
    ),
    next_after_seq: more ? page[page.length - 1]!.seq : null,
  };
}

/** Stored rows of a seq range grouped per stream, in seq order, as payload strings of ≤ `batch` records. */
export function replayPayloads(
  db: Database,
  fromSeq: number,
  toSeq: number,
  batch: number,
): { stream: string; payload: string; count: number }[] {
  const rows = db
    .prepare("SELECT seq, stream, body FROM outbox WHERE seq >= ? AND seq <= ? ORDER BY seq")
    .all(fromSeq, toSeq) as Row[];
  const out: { stream: string; payload: string; count: number }[] = [];
  let cur: { stream: string; parts: string[] } | undefined;
  const flush = () => {
    if (cur && cur.parts.length > 0)
      out.push({
        stream: cur.stream,
        payload: `{"records":[${cur.parts.join(",")}]}`,
        count: cur.parts.length,
      });
  };
  for (const r of rows) {
    if (!cur || cur.stream !== r.stream || cur.parts.length >= batch) {
      flush();
      cur = { stream: r.stream, parts: [] };
    }
    cur.parts.push(withSeq(r.seq, r.body));
  }
  flush();
  return out;
}
