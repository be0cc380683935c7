/**
 * `history` and `replay` on the store (pending and sent rows alike: the store keeps sent
 * readings as history for `store.history_days`). Records are returned and republished exactly
 * as stored — the same SenML body with its `seq`, under the store's `epoch` — so the hypervisor
 * can dedupe by (gateway, epoch, seq) (docs/mqtt-api.md §7). The SQL lives in agent/store
 * (queries.ts); each page's work is bounded there.
 */
import { batchPayload, withSeq } from "../store/records.js";
import type { Store } from "../store/store.js";
import type { ResultOf } from "./schemas.js";
import type { HistoryQuery } from "./service.js";

export function queryHistory(store: Store, q: HistoryQuery): ResultOf<"history"> {
  const filter = {
    telemetryOnly: true,
    fromTs: q.from,
    toTs: q.to,
    ...(q.device !== undefined && q.point !== undefined
      ? { name: `${q.device}/${q.point}` }
      : q.device !== undefined
        ? { device: q.device }
        : {}),
  };
  const page = store.readingsPage(filter, q.afterSeq ?? 0, q.limit);
  return {
    epoch: store.epoch,
    records: page.rows.map(
      (r) => JSON.parse(withSeq(r.seq, r.body)) as ResultOf<"history">["records"][number],
    ),
    next_after_seq: page.next,
  };
}

export interface ReplayBatch {
  stream: string;
  payload: string;
  count: number;
}

/**
 * Stored rows of a seq range grouped per stream, in seq order, as payloads of ≤ `batch` records
 * and ≤ `maxBytes` bytes each (the broker's Maximum Packet Size, less topic and header). A single
 * record larger than that is returned in `tooLarge` instead of being published.
 */
export function replayPayloads(
  store: Store,
  fromSeq: number,
  toSeq: number,
  batch: number,
  maxBytes = Infinity,
): { batches: ReplayBatch[]; stored: number; tooLarge: number[] } {
  const rows = store.recordsInRange(fromSeq, toSeq, toSeq - fromSeq + 1);
  const epoch = store.epoch;
  const batches: ReplayBatch[] = [];
  const tooLarge: number[] = [];
  let cur: { stream: string; parts: string[]; bytes: number } | undefined;
  const frame = Buffer.byteLength(batchPayload(epoch, [])) + 1; // + the comma
  const flush = () => {
    if (cur && cur.parts.length > 0)
      batches.push({
        stream: cur.stream,
        payload: batchPayload(epoch, cur.parts),
        count: cur.parts.length,
      });
    cur = undefined;
  };
  for (const r of rows) {
    const part = withSeq(r.seq, r.body);
    const size = Buffer.byteLength(part) + 1;
    if (frame + size > maxBytes) {
      tooLarge.push(r.seq);
      continue;
    }
    if (
      !cur ||
      cur.stream !== r.stream ||
      cur.parts.length >= batch ||
      cur.bytes + size > maxBytes
    ) {
      flush();
      cur = { stream: r.stream, parts: [], bytes: frame };
    }
    cur.parts.push(part);
    cur.bytes += size;
  }
  flush();
  return { batches, stored: rows.length, tooLarge };
}
