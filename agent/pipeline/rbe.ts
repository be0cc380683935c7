/**
 * Report by exception, per point (config: `deadband`, `max_interval` in config/common.ts).
 *
 * A reading is forwarded when any of these holds, compared with the last *forwarded* reading of
 * the same point (not the last acquired one, so a slow drift still crosses the deadband):
 *   - the point has neither deadband nor max_interval (everything is forwarded);
 *   - it is the first reading since the agent started (state is in memory on purpose: after a
 *     restart the hypervisor gets a fresh value of every point);
 *   - quality or value type changed;
 *   - a number moved by more than the deadband: absolute, or a percentage of |last value|
 *     (any change counts when the last value was 0); booleans and strings on any change;
 *   - max_interval elapsed since the last forwarded reading (acquisition time);
 *   - the reading was explicitly requested (`read` command), bypassing the deadband.
 * A point with only max_interval forwards on any change and at least every max_interval.
 */
import type { Reading } from "../../drivers/driver.js";
import type { Stage } from "./stage.js";

export interface RbeRule {
  /** Absolute deadband, or `{ percent }`. Undefined: forward any change. */
  deadband?: number | { percent: number };
  /** ms */
  maxInterval?: number;
}

export function parseDeadband(d: number | string | undefined): RbeRule["deadband"] {
  if (d === undefined) return undefined;
  if (typeof d === "number") return d;
  return { percent: Number(d.slice(0, -1)) };
}

interface Last {
  value: Reading["value"];
  quality: Reading["quality"];
  ts: number;
}

function moved(rule: RbeRule, last: Last, r: Reading): boolean {
  if (r.quality !== last.quality) return true;
  if (typeof r.value !== typeof last.value) return true;
  if (typeof r.value === "number" && typeof last.value === "number") {
    const delta = Math.abs(r.value - last.value);
    const db = rule.deadband;
    if (db === undefined) return delta > 0;
    if (typeof db === "number") return delta > db;
    return last.value === 0 ? delta > 0 : delta > (Math.abs(last.value) * db.percent) / 100;
  }
  return r.value !== last.value;
}

export class ReportByException implements Stage {
  readonly name = "report-by-exception";
  private readonly last = new Map<string, Last>();

  constructor(private readonly rules: ReadonlyMap<string, RbeRule>) {}

  process(readings: readonly Reading[], ctx: { bypassDeadband: boolean }): readonly Reading[] {
    if (this.rules.size === 0) return readings;
    const out: Reading[] = [];
    for (const r of readings) {
      const key = `${r.device}/${r.point}`;
      const rule = this.rules.get(key);
      if (!rule) {
        out.push(r);
        continue;
      }
      const last = this.last.get(key);
      const send =
        ctx.bypassDeadband ||
        !last ||
        moved(rule, last, r) ||
        (rule.maxInterval !== undefined && r.ts - last.ts >= rule.maxInterval);
      if (send) {
        this.last.set(key, { value: r.value, quality: r.quality, ts: r.ts });
        out.push(r);
      }
    }
    return out;
  }
}

interface PointLike {
  id?: unknown;
  deadband?: number | string;
  max_interval?: number;
}

/**
 * Rules from the driver configuration: every `drivers[].devices[].points[]` with a deadband or a
 * max_interval. (Points that come only from a device profile file are the driver's business: a
 * driver that loads profiles can pass their rules through `Pipeline.addRules`.)
 */
export function rulesFromConfig(drivers: readonly unknown[]): Map<string, RbeRule> {
  const rules = new Map<string, RbeRule>();
  for (const d of drivers) {
    const devices = (d as { devices?: unknown }).devices;
    if (!Array.isArray(devices)) continue;
    for (const dev of devices as { id?: unknown; points?: unknown }[]) {
      if (typeof dev.id !== "string" || !Array.isArray(dev.points)) continue;
      for (const p of dev.points as PointLike[]) {
        if (typeof p.id !== "string") continue;
        if (p.deadband === undefined && p.max_interval === undefined) continue;
        const rule: RbeRule = {};
        const db = parseDeadband(p.deadband);
        if (db !== undefined) rule.deadband = db;
        if (p.max_interval !== undefined) rule.maxInterval = p.max_interval;
        rules.set(`${dev.id}/${p.id}`, rule);
      }
    }
  }
  return rules;
}
