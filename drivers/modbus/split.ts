/**
 * Fallback for devices that refuse reads spanning unmapped registers. When a coalesced read that
 * spans a gap is answered "illegal data address" (exception 2), the device reads that table
 * without gaps from then on (as with `max_gap: 0` for it), and the refused read is retried at
 * once as reads of contiguous mapped registers. Only the exception path runs this code: the
 * planned reads and their prebuilt requests are untouched otherwise.
 */
import { planReads, type PlanItem, type PlanLimits, type ReadRequest } from "./plan.js";
import type { Table } from "./schema.js";

/** Exception code of "illegal data address". */
export const ILLEGAL_DATA_ADDRESS = 2;

/** Does the read span at least one address no item covers? (Items are sorted by address.) */
export function hasGap<T extends PlanItem>(req: ReadRequest<T>): boolean {
  let end = req.address - 1; // last address covered so far
  for (const it of req.items) {
    if (it.address > end + 1) return true;
    end = Math.max(end, it.address + it.size - 1);
  }
  return end < req.address + req.count - 1;
}

/** The read as reads of contiguous mapped addresses only. */
export function splitRead<T extends PlanItem>(
  req: ReadRequest<T>,
  limits: PlanLimits,
): ReadRequest<T>[] {
  return planReads(req.items, { ...limits, maxGap: 0 });
}

/**
 * A new plan where every read of `table` that spans a gap is split; the other reads are the same
 * objects (their prebuilt requests are kept).
 */
export function splitTable<T extends PlanItem, R extends ReadRequest<T>>(
  plan: readonly R[],
  table: Table,
  limits: PlanLimits,
): (R | ReadRequest<T>)[] {
  const out: (R | ReadRequest<T>)[] = [];
  for (const r of plan) {
    if (r.table === table && hasGap(r)) out.push(...splitRead(r, limits));
    else out.push(r);
  }
  return out;
}

export function splitMessage(device: string, req: ReadRequest<PlanItem>): string {
  return `device ${device} refused a read of ${req.table} ${req.address}..${req.address + req.count - 1} spanning unmapped registers (exception 2): reading its points separately from now on; set max_gap: 0 for it to skip this probe`;
}
