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

/**
 * Per-point state: the rule (or none) and the last forwarded reading, mutated in place. Found
 * through device → point maps, not a `${device}/${point}` key: this runs for every acquired
 * reading (hundreds of thousands per second on a busy gateway), and building and hashing a fresh
 * key string per reading was the pipeline's largest cost in bench/modbus-poll.
 */
interface PointState {
  /** `${device}/${point}`, built once: the key of `rules`. */
  readonly key: string;
  rule: RbeRule | undefined;
  has: boolean;
  value: Reading["value"];
  quality: Reading["quality"];
  ts: number;
}

function moved(rule: RbeRule, last: PointState, r: Reading): boolean {
  if (r.quality !== last.quality) return true;
  const v = r.value;
  const lv = last.value;
  if (typeof v !== typeof lv) return true;
  if (typeof v === "number" && typeof lv === "number") {
    const delta = Math.abs(v - lv);
    const db = rule.deadband;
    if (db === undefined) return delta > 0;
    if (typeof db === "number") return delta > db;
    return lv === 0 ? delta > 0 : delta > (Math.abs(lv) * db.percent) / 100;
  }
  return v !== lv;
}

const MAX_RULELESS = 100_000;

export class ReportByException implements Stage {
  readonly name = "report-by-exception";
  private readonly points = new Map<string, Map<string, PointState>>();
  /** States cached for points without a rule; bounded, as a codec could invent point names. */
  private ruleless = 0;

  constructor(private readonly rules: ReadonlyMap<string, RbeRule>) {}

  /** Call after `rules` changed: re-binds known points, keeping their last forwarded reading. */
  rulesChanged(): void {
    for (const byPoint of this.points.values())
      for (const s of byPoint.values()) s.rule = this.rules.get(s.key);
  }

  private state(device: string, point: string, byPoint: Map<string, PointState>): PointState {
    const key = `${device}/${point}`;
    const rule = this.rules.get(key);
    const s: PointState = { key, rule, has: false, value: null, quality: "good", ts: 0 };
    if (rule !== undefined || this.ruleless < MAX_RULELESS) {
      if (rule === undefined) this.ruleless++;
      byPoint.set(point, s);
    }
    return s;
  }

  process(readings: readonly Reading[], ctx: { bypassDeadband: boolean }): readonly Reading[] {
    if (this.rules.size === 0) return readings;
    // The input array itself is returned while every reading passes (no copy); the first one
    // filtered out starts a copy of the prefix.
    let out: Reading[] | undefined;
    let device: string | undefined;
    let byPoint: Map<string, PointState> | undefined;
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      // A batch is normally one device's poll: one device lookup per batch, not per reading.
      if (r.device !== device || byPoint === undefined) {
        device = r.device;
        byPoint = this.points.get(device);
        if (byPoint === undefined)
          this.points.set(device, (byPoint = new Map<string, PointState>()));
      }
      const s = byPoint.get(r.point) ?? this.state(device, r.point, byPoint);
      const rule = s.rule;
      const send =
        rule === undefined ||
        ctx.bypassDeadband ||
        !s.has ||
        moved(rule, s, r) ||
        (rule.maxInterval !== undefined && r.ts - s.ts >= rule.maxInterval);
      if (send) {
        if (rule !== undefined) {
          s.has = true;
          s.value = r.value;
          s.quality = r.quality;
          s.ts = r.ts;
        }
        if (out !== undefined) out.push(r);
      } else out ??= readings.slice(0, i);
    }
    return out ?? readings;
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
