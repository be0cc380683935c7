/**
 * Fallback for devices that refuse reads spanning unmapped registers. When a coalesced read that
 * spans a gap is answered "illegal data address" (exception 2), the device reads that table
 * without gaps from then on (the planner's `gapless` tables, as with `max_gap: 0` for it), and the
 * refused read is retried at once as reads of contiguous mapped registers. Only the exception
 * path runs this code.
 */
import type { PlanItem, ReadRequest } from "./plan.js";

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

export function splitMessage(device: string, req: ReadRequest<PlanItem>): string {
  return `device ${device} refused a read of ${req.table} ${req.address}..${req.address + req.count - 1} spanning unmapped registers (exception 2): reading its points separately from now on; set max_gap: 0 for it to skip this probe`;
}
