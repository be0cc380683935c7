/**
 * The program side of the arbitration (README "Arbitration"): which program a calendar selects
 * for a night, the night's control events as instants, and the program level at any instant —
 * with ramps. Pure functions of the configuration and the time: the same code answers "what
 * should the lamps do now" after a restart and prints tonight's plan (`eclor-edge lighting show`).
 *
 * A night runs from noon of its evening's date to noon of the next day (config/lighting.ts).
 */
import type {
  AstroEvent,
  LightingConfig,
  LightingControl,
  LightingGroup,
} from "../../config/lighting.js";
import { type Location, astroTime } from "./sun.js";
import { addDays, nightOf, weekdayOf, zonedTime } from "./time.js";

export interface PlanEvent {
  ts: number;
  level: number;
  rampMs: number;
  /** "program" (a calendar rule matched) or "default" (none did). */
  source: "program" | "default";
  program: string | null;
  /** The control as written: "sunset+10", "00:30", "sunrise-15". */
  control: string;
  /** In words, for events and the CLI. */
  why: string;
}

export interface ProgramChoice {
  program: string | null;
  /** Index of the matching rule, or null for the default. */
  rule: number | null;
}

export interface Sky {
  location: Location;
  timeZone: string;
}

/** Does a yearly "MM-DD" or dated "YYYY-MM-DD" range contain the evening `date`? */
function inRange(date: string, from: string, to: string): boolean {
  if (from.length === 10) return date >= from && date <= to;
  const md = date.slice(5);
  return from <= to ? md >= from && md <= to : md >= from || md <= to;
}

const sameDay = (date: string, ref: string) =>
  ref.length === 10 ? date === ref : date.slice(5) === ref;

const WD = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

export function chooseProgram(
  cfg: LightingConfig,
  calendarId: string,
  night: string,
): ProgramChoice {
  const cal = cfg.calendars.find((c) => c.id === calendarId);
  const rules = cal?.rules ?? [];
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (r.dates && !r.dates.some((d) => sameDay(night, d))) continue;
    if (r.from !== undefined && r.to !== undefined && !inRange(night, r.from, r.to)) continue;
    if (r.weekdays && !r.weekdays.includes(WD[weekdayOf(night)] as (typeof r.weekdays)[number]))
      continue;
    return { program: r.program, rule: i };
  }
  return { program: null, rule: null };
}

function controlLabel(c: LightingControl): string {
  if (/^\d/.test(c.at)) return c.at;
  return c.offset === 0 ? c.at : `${c.at}${c.offset > 0 ? "+" : ""}${c.offset}`;
}

/** The instant of a control in the night of `night`; null when the sun does not cross. */
function controlTime(c: LightingControl, night: string, sky: Sky): number | null {
  if (/^\d/.test(c.at)) {
    const [h, m] = c.at.split(":").map(Number) as [number, number];
    return zonedTime(h < 12 ? addDays(night, 1) : night, h, m, sky.timeZone);
  }
  const t = astroTime(night, c.at as AstroEvent, sky.location, sky.timeZone);
  return t === null ? null : t + c.offset * 60_000;
}

/** Per configuration object (a new block is a new object): the nights already computed. */
const eventCache = new WeakMap<LightingConfig, Map<string, PlanEvent[]>>();

/** The control events of one night for a group, in time order. */
export function nightEvents(
  cfg: LightingConfig,
  group: LightingGroup,
  night: string,
  sky: Sky,
): PlanEvent[] {
  let byNight = eventCache.get(cfg);
  if (!byNight) eventCache.set(cfg, (byNight = new Map<string, PlanEvent[]>()));
  const key = `${group.id}|${group.calendar}|${night}|${sky.location.lat}|${sky.location.lon}|${sky.timeZone}`;
  let events = byNight.get(key);
  if (!events) {
    // Bounded: a long-running agent walks through the nights.
    if (byNight.size > 4096) byNight.clear();
    events = computeNight(cfg, group, night, sky);
    byNight.set(key, events);
  }
  return events;
}

function computeNight(
  cfg: LightingConfig,
  group: LightingGroup,
  night: string,
  sky: Sky,
): PlanEvent[] {
  const choice = chooseProgram(cfg, group.calendar, night);
  const program = choice.program ? cfg.programs.find((p) => p.id === choice.program) : undefined;
  const controls: LightingControl[] = program
    ? program.controls
    : [
        { at: "sunset", offset: 0, level: cfg.default.night_level, ramp: 0 },
        { at: "sunrise", offset: 0, level: cfg.default.day_level, ramp: 0 },
      ];
  const out: PlanEvent[] = [];
  for (const c of controls) {
    const ts = controlTime(c, night, sky);
    if (ts === null) continue;
    const label = controlLabel(c);
    out.push({
      ts,
      level: c.level,
      rampMs: c.ramp,
      source: program ? "program" : "default",
      program: program?.id ?? null,
      control: label,
      why: program
        ? `program "${program.id}" (calendar "${group.calendar}" rule ${choice.rule! + 1}): ${label} → ${c.level} %`
        : `default state (no rule of calendar "${group.calendar}" applies to the night of ${night}): ${label} → ${c.level} %`,
    });
  }
  return out.sort((a, b) => a.ts - b.ts);
}

export interface ProgramState {
  level: number;
  /** The event in force (null: none yet, level from the default before sunset). */
  event: PlanEvent | null;
  /** The next event after `t` (for "until the next program event" overrides). */
  next: PlanEvent | null;
  /** True while a ramp is in progress. */
  ramping: boolean;
}

/** The program level at `t`: the last event at or before `t` over the previous and this night. */
export function programAt(
  cfg: LightingConfig,
  group: LightingGroup,
  t: number,
  sky: Sky,
): ProgramState {
  const night = nightOf(t, sky.timeZone);
  const events = [
    ...nightEvents(cfg, group, addDays(night, -2), sky),
    ...nightEvents(cfg, group, addDays(night, -1), sky),
    ...nightEvents(cfg, group, night, sky),
    ...nightEvents(cfg, group, addDays(night, 1), sky),
  ].sort((a, b) => a.ts - b.ts);
  let i = -1;
  for (let k = 0; k < events.length; k++) if (events[k]!.ts <= t) i = k;
  const next = events.find((e) => e.ts > t) ?? null;
  if (i < 0) return { level: cfg.default.day_level, event: null, next, ramping: false };
  const ev = events[i]!;
  const prevLevel = i > 0 ? events[i - 1]!.level : ev.level;
  if (ev.rampMs > 0 && t < ev.ts + ev.rampMs) {
    const f = (t - ev.ts) / ev.rampMs;
    return {
      level: Math.round(prevLevel + (ev.level - prevLevel) * f),
      event: ev,
      next,
      ramping: true,
    };
  }
  return { level: ev.level, event: ev, next, ramping: false };
}
