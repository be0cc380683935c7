/**
 * The events the store queues about itself (docs/mqtt-api.md §4, §7): `gap` when records were
 * dropped (store_full: with seq ranges; memory_full / shutdown: readings that never got a seq,
 * with count and acquisition time range) and `store_epoch` when a new epoch begins.
 */
import { type DropRange } from "./outbox.js";
import { type PendingRecord, PRIORITY_NAMES, eventRecord } from "./records.js";
import type { Loss } from "./sidecar.js";

export function storeFullGap(d: DropRange, maxBytes: number, ts: number): PendingRecord {
  const prio = PRIORITY_NAMES[d.prio];
  return eventRecord({
    ts,
    type: "gap",
    severity: "error",
    message: `store full (max_bytes ${maxBytes}): dropped the ${d.count} oldest unsent ${prio} records, seq ${d.first}..${d.last}`,
    data: {
      reason: "store_full",
      priority: prio,
      count: d.count,
      first_seq: d.first,
      last_seq: d.last,
    },
  });
}

export function lossGap(
  reason: "memory_full" | "shutdown",
  d: Loss,
  memoryMax: number,
  ts: number,
): PendingRecord {
  const range = `between ${new Date(d.firstTs).toISOString()} and ${new Date(d.lastTs).toISOString()}`;
  const message =
    reason === "memory_full"
      ? `store database unavailable and memory buffer full (memory_max ${memoryMax}): dropped ${d.count} readings acquired ${range} before they got a seq`
      : `the agent stopped while the store database could not be written: ${d.count} readings acquired ${range} were lost before they got a seq`;
  return eventRecord({
    ts,
    type: "gap",
    severity: "error",
    message,
    data: { reason, count: d.count, first_ts: d.firstTs / 1000, last_ts: d.lastTs / 1000 },
  });
}

/** `previous` is the epoch the box knew before (from the note), when the database was replaced. */
export function epochEvent(
  epoch: string,
  firstSeq: number,
  previous: { epoch: string; nextSeq?: number | undefined } | undefined,
  ts: number,
): PendingRecord {
  const message = previous
    ? `new store epoch ${epoch}: the database was replaced (the previous epoch ${previous.epoch} had reached seq ${(previous.nextSeq ?? 1) - 1}); seqs start again at ${firstSeq} — deduplicate by (epoch, seq)`
    : `store epoch ${epoch} begins at seq ${firstSeq} (store upgraded; earlier records were published without an epoch)`;
  return eventRecord({
    ts,
    type: "store_epoch",
    severity: previous ? "warning" : "info",
    message,
    data: {
      epoch,
      first_seq: firstSeq,
      reason: previous ? "new_store" : "upgraded",
      ...(previous ? { previous_epoch: previous.epoch } : {}),
      ...(previous?.nextSeq !== undefined ? { previous_last_seq: previous.nextSeq - 1 } : {}),
    },
  });
}
