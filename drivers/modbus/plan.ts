/**
 * Request planning: coalesce the points of one device and table into as few reads as possible.
 *
 * A read covers a contiguous address range of at most `maxCount` registers (125, Modbus
 * Application Protocol v1.1b3 §6.3/6.4) or bits (2000, §6.1/6.2), and may span a run of at most
 * `maxGap` unmapped addresses (0 for devices that answer "illegal data address" to reads that
 * touch unmapped registers). Points are never split over two reads.
 *
 * With points sorted by start address, a read covers a contiguous run of that order, and the
 * greedy "extend the current read while the next point fits" is optimal: any plan can be turned
 * into the greedy one read by read without adding reads (exchange argument). A unit test checks
 * it against an exhaustive search on random maps.
 */
import type { Table } from "./schema.js";

export interface PlanItem {
  table: Table;
  address: number;
  /** Registers (or bits) the item occupies. */
  size: number;
}

export interface ReadRequest<T extends PlanItem> {
  table: Table;
  address: number;
  count: number;
  items: T[];
}

export interface PlanLimits {
  maxRegisters: number;
  maxBits: number;
  maxGap: number;
  /** Tables read without gaps whatever `maxGap` says (a device refused a read across a gap). */
  gapless?: ReadonlySet<Table>;
}

const tableOrder: Table[] = ["coil", "discrete_input", "holding", "input"];

export function planReads<T extends PlanItem>(
  items: readonly T[],
  limits: PlanLimits,
): ReadRequest<T>[] {
  const out: ReadRequest<T>[] = [];
  for (const table of tableOrder) {
    const max =
      table === "coil" || table === "discrete_input" ? limits.maxBits : limits.maxRegisters;
    const maxGap = limits.gapless?.has(table) ? 0 : limits.maxGap;
    const sorted = items
      .filter((i) => i.table === table)
      .sort((a, b) => a.address - b.address || b.size - a.size);
    let cur: ReadRequest<T> | undefined;
    let end = -1; // last address covered by `cur`
    for (const it of sorted) {
      const itEnd = it.address + it.size - 1;
      if (cur) {
        const gap = it.address - end - 1; // negative when overlapping
        const newEnd = Math.max(end, itEnd);
        if (gap <= maxGap && newEnd - cur.address + 1 <= max) {
          cur.items.push(it);
          end = newEnd;
          cur.count = end - cur.address + 1;
          continue;
        }
      }
      cur = { table, address: it.address, count: it.size, items: [it] };
      end = itEnd;
      out.push(cur);
    }
  }
  return out;
}
