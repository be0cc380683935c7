/**
 * The arbitration, explicit (README "Arbitration"), highest first:
 *
 *   1. override   — from the hypervisor or a technician, the last one received wins; it ends at
 *                   its expiry, or at the next program event when given "until the next event";
 *   2. safe state — while the clock cannot be trusted (the schedule would be wrong);
 *   3. sensor     — a lux rule (below a threshold) or a presence rule (a detection in the last
 *                   `hold`) raises the level to the rule's level; sensors only ever raise;
 *   4. program    — the control in force of the program the calendar selects for the night;
 *   5. default    — no calendar rule applies: on at night, off by day (configurable).
 *
 * Pure: the same inputs give the same decision (the controller, the CLI plan and the tests).
 */
import type { LightingConfig, LightingGroup } from "../../config/lighting.js";
import type { ProgramState } from "./plan.js";

export type Source = "override" | "safe" | "sensor" | "program" | "default";

export interface Override {
  id: number;
  group: string;
  level: number;
  start: number;
  /** ms since the epoch; null with `untilNextEvent`. */
  expires: number | null;
  untilNextEvent: boolean;
  who: string;
  commandId: string | null;
  reason: string | null;
}

export interface SensorValue {
  value: number | boolean | string | null;
  ts: number;
}

export interface Sensors {
  lux?: SensorValue | undefined;
  /** Last detection (ms). */
  presence?: number | undefined;
}

export interface ClockView {
  trusted: boolean;
  reason: string;
}

export interface Decision {
  level: number;
  source: Source;
  reason: string;
  program: string | null;
}

/** Has the override ended at `now`? Returns the reason in words, or null while it holds. */
export function overrideEnded(o: Override, prog: ProgramState, now: number): string | null {
  if (o.expires !== null && now >= o.expires) return "expired";
  if (o.untilNextEvent && prog.event && prog.event.ts > o.start && prog.event.ts <= now)
    return `next program event (${prog.event.control})`;
  return null;
}

const num = (v: SensorValue["value"]) =>
  typeof v === "number" ? v : typeof v === "boolean" ? (v ? 1 : 0) : null;

export function decide(
  cfg: LightingConfig,
  group: LightingGroup,
  prog: ProgramState,
  override: Override | undefined,
  sensors: Sensors,
  clock: ClockView,
  now: number,
): Decision {
  const program = prog.event?.program ?? null;
  if (override)
    return {
      level: override.level,
      source: "override",
      reason: `override by ${override.who}${override.reason ? ` (${override.reason})` : ""} ${override.untilNextEvent ? "until the next program event" : `until ${new Date(override.expires!).toISOString()}`}`,
      program,
    };
  if (!clock.trusted) {
    const s = cfg.safe_state;
    const lux = s.lux ? num(sensors.lux?.value ?? null) : null;
    if (s.lux && lux !== null)
      return {
        level: lux < s.lux.below ? s.level : 0,
        source: "safe",
        reason: `safe state, clock not trusted (${clock.reason}): lux ${lux} ${lux < s.lux.below ? "<" : "≥"} ${s.lux.below}`,
        program,
      };
    return {
      level: s.level,
      source: "safe",
      reason: `safe state, clock not trusted (${clock.reason})${s.lux ? ": no lux reading" : ""}`,
      program,
    };
  }
  let best: Decision | undefined;
  const lux = group.lux ? num(sensors.lux?.value ?? null) : null;
  if (group.lux && lux !== null && lux < group.lux.below && group.lux.level > prog.level)
    best = {
      level: group.lux.level,
      source: "sensor",
      reason: `lux rule: ${lux} lx below ${group.lux.below} lx`,
      program,
    };
  const p = group.presence;
  if (
    p &&
    sensors.presence !== undefined &&
    now - sensors.presence < p.hold &&
    p.level > prog.level &&
    p.level > (best?.level ?? -1)
  )
    best = {
      level: p.level,
      source: "sensor",
      reason: `presence rule: detection at ${new Date(sensors.presence).toISOString()}, held ${Math.round(p.hold / 60_000)} min`,
      program,
    };
  if (best) return best;
  return {
    level: prog.level,
    source: prog.event?.source ?? "default",
    reason: prog.event
      ? `${prog.event.why}${prog.ramping ? " (ramping)" : ""}`
      : "default state (before the first event)",
    program,
  };
}
