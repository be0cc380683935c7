/**
 * The planner must reach the minimum number of reads. The minimum is found here by exhaustive
 * search over every partition of small random point maps (independent of the planner's logic).
 */
import { describe, expect, it } from "vitest";
import { type PlanItem, planReads } from "../../drivers/modbus/plan.js";
import { hasGap } from "../../drivers/modbus/split.js";

interface Item extends PlanItem {
  n: number;
}

/** Can these items be read in one request? (range ≤ max, no unmapped run longer than maxGap) */
function feasible(group: Item[], max: number, maxGap: number): boolean {
  const start = Math.min(...group.map((i) => i.address));
  const end = Math.max(...group.map((i) => i.address + i.size - 1));
  if (end - start + 1 > max) return false;
  const covered = new Set<number>();
  for (const i of group) for (let a = i.address; a < i.address + i.size; a++) covered.add(a);
  let run = 0;
  for (let a = start; a <= end; a++) {
    run = covered.has(a) ? 0 : run + 1;
    if (run > maxGap) return false;
  }
  return true;
}

/** Minimum number of feasible groups covering all items (exhaustive, for ≤ 8 items). */
function minimum(items: Item[], max: number, maxGap: number): number {
  let best = Infinity;
  const groups: Item[][] = [];
  const rec = (k: number) => {
    if (groups.length >= best) return;
    if (k === items.length) {
      // Gaps are checked only on complete groups: a later item may fill a gap.
      if (groups.every((g) => feasible(g, max, maxGap))) best = groups.length;
      return;
    }
    const it = items[k]!;
    for (const g of groups) {
      g.push(it);
      if (feasible(g, max, Infinity)) rec(k + 1);
      g.pop();
    }
    groups.push([it]);
    rec(k + 1);
    groups.pop();
  };
  rec(0);
  return best;
}

function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

describe("modbus read planner", () => {
  it("reaches the exhaustive minimum on 400 random maps", () => {
    const r = rng(42);
    for (let t = 0; t < 400; t++) {
      const n = 2 + Math.floor(r() * 6);
      const max = [4, 8, 10, 16, 125][Math.floor(r() * 5)]!;
      const maxGap = [0, 1, 2, 5][Math.floor(r() * 4)]!;
      const items: Item[] = Array.from({ length: n }, (_, i) => ({
        n: i,
        table: "holding" as const,
        address: Math.floor(r() * 40),
        size: [1, 1, 2, 2, 4][Math.floor(r() * 5)]!,
      }));
      const plan = planReads(items, { maxRegisters: max, maxBits: 2000, maxGap });
      // Every item is read exactly once, inside a feasible request.
      expect(plan.flatMap((p) => p.items.map((i) => i.n)).sort()).toEqual(
        items.map((i) => i.n).sort(),
      );
      for (const p of plan) {
        expect(feasible(p.items, max, maxGap)).toBe(true);
        expect(p.count).toBeLessThanOrEqual(max);
        for (const i of p.items) {
          expect(i.address).toBeGreaterThanOrEqual(p.address);
          expect(i.address + i.size).toBeLessThanOrEqual(p.address + p.count);
        }
      }
      expect(plan.length, JSON.stringify({ items, max, maxGap })).toBe(minimum(items, max, maxGap));
    }
  });

  it("plans the SDM630 map in 3 reads with max_gap 40, 5 with max_gap 0", () => {
    const addrs = [
      0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 0x34, 0x46, 0x48, 0x4a,
      0xc8, 0xca, 0xcc, 0x156,
    ];
    const items = addrs.map((a) => ({ table: "input" as const, address: a, size: 2 }));
    expect(
      planReads(items, { maxRegisters: 125, maxBits: 2000, maxGap: 40 }).map((p) => [
        p.address,
        p.count,
      ]),
    ).toEqual([
      [0, 0x4c],
      [0xc8, 6],
      [0x156, 2],
    ]);
    expect(planReads(items, { maxRegisters: 125, maxBits: 2000, maxGap: 0 })).toHaveLength(5);
  });

  it("keeps tables apart and honours the 2000-bit limit for coils", () => {
    const items: PlanItem[] = [
      { table: "coil", address: 0, size: 1 },
      { table: "coil", address: 1999, size: 1 },
      { table: "coil", address: 2000, size: 1 },
      { table: "holding", address: 0, size: 1 },
      { table: "input", address: 0, size: 1 },
    ];
    const plan = planReads(items, { maxRegisters: 125, maxBits: 2000, maxGap: 2000 });
    expect(plan.map((p) => [p.table, p.address, p.count])).toEqual([
      ["coil", 0, 2000],
      ["coil", 2000, 1],
      ["holding", 0, 1],
      ["input", 0, 1],
    ]);
  });

  it("finds gaps (overlaps are not gaps) and splits only the gappy reads of one table", () => {
    const items: PlanItem[] = [
      { table: "holding", address: 10, size: 4 },
      { table: "holding", address: 12, size: 2 }, // inside the first: no gap
      { table: "holding", address: 14, size: 1 },
      { table: "holding", address: 20, size: 2 }, // gap 15..19
      { table: "input", address: 0, size: 1 },
      { table: "input", address: 3, size: 1 }, // gap 1..2
      { table: "coil", address: 0, size: 1 },
    ];
    const limits = { maxRegisters: 125, maxBits: 2000, maxGap: 16 };
    const plan = planReads(items, limits);
    expect(plan.map((r) => [r.table, r.address, r.count, hasGap(r)])).toEqual([
      ["coil", 0, 1, false],
      ["holding", 10, 12, true],
      ["input", 0, 4, true],
    ]);
    // The device's fallback: the refused table is planned again without gaps, the rest as before.
    const split = planReads(items, { ...limits, gapless: new Set(["holding" as const]) });
    expect(split.map((r) => [r.table, r.address, r.count])).toEqual([
      ["coil", 0, 1],
      ["holding", 10, 5],
      ["holding", 20, 2],
      ["input", 0, 4],
    ]);
    // Later plans of a table marked gapless have no gap either.
    const again = planReads(items, { ...limits, gapless: new Set(["input" as const]) });
    expect(again.map((r) => [r.table, r.address, r.count])).toEqual([
      ["coil", 0, 1],
      ["holding", 10, 12],
      ["input", 0, 1],
      ["input", 3, 1],
    ]);
  });
});
