/**
 * The `lighting:` block: street lighting that runs itself (issue 21), after the TALQ 2.x model
 * (TALQ Specification 2.x, "Calendar", "Program", "Control program" and "Lamp actuator" functions):
 *
 *   calendars  ordered rules (date ranges, weekdays, special dates) → a program, first match wins
 *   programs   controls: fixed local times ("22:30") or astro events (sunset, sunrise, civil dusk,
 *              civil dawn) with an offset in minutes, each setting a level 0..100 % with a ramp
 *   groups     lamps (device + point, written through the command router) bound to a calendar
 *   default    what applies when no calendar rule matches (on at night by default)
 *   safe_state what applies when the clock cannot be trusted
 *
 * A program describes ONE NIGHT, from noon of the evening's date to noon of the next day: fixed
 * times before 12:00 and the morning events (sunrise, civil dawn) fall on the next day, so a
 * "00:30" control of the program of 14 July dims at 00:30 on 15 July. The calendar is matched
 * against the evening's date. See agent/lighting/README.md.
 */
import { z } from "zod";
import { duration, intRange, location, topicSegment } from "./common.js";

const level = intRange(0, 100).describe("Level in percent, 0 (off) .. 100 (full).");

const hhmm = z
  .string({ error: 'expected a local time "HH:MM" (00:00..23:59)' })
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'expected a local time "HH:MM" (00:00..23:59)' });

/** "MM-DD" (every year) or "YYYY-MM-DD" (one date). */
const dayRef = z
  .string({ error: 'expected a date "YYYY-MM-DD" or a yearly date "MM-DD"' })
  .regex(/^(\d{4}-)?(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, {
    error: 'expected a date "YYYY-MM-DD" or a yearly date "MM-DD"',
  });

export const ASTRO_EVENTS = ["sunset", "sunrise", "civil_dusk", "civil_dawn"] as const;
export type AstroEvent = (typeof ASTRO_EVENTS)[number];
export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

const control = z
  .strictObject({
    at: z
      .union([z.enum(ASTRO_EVENTS), hhmm], {
        error: `expected a local time "HH:MM" or one of ${ASTRO_EVENTS.join(", ")}`,
      })
      .describe(
        'When: a local time "HH:MM" (times before 12:00 are in the morning after the evening) or an astro event: sunset, sunrise, civil_dusk (sun 6° below the horizon, evening), civil_dawn (morning).',
      ),
    offset: intRange(-720, 720)
      .default(0)
      .describe("Minutes after (+) or before (-) the astro event; only with an astro event."),
    level,
    ramp: duration
      .default(0)
      .describe('Time to go from the previous level to this one, e.g. "2m" (default: at once).'),
  })
  .superRefine((c, ctx) => {
    if (c.offset !== 0 && /^\d/.test(c.at))
      ctx.addIssue({
        code: "custom",
        path: ["offset"],
        message: "an offset goes with an astro event (sunset, sunrise…), not with a fixed time",
      });
  });

const program = z.strictObject({
  id: topicSegment.describe("Program id, referred to by calendar rules."),
  description: z.string().optional(),
  controls: z
    .array(control)
    .min(1, { error: "a program needs at least one control" })
    .max(48, { error: "at most 48 controls per program" })
    .describe("Level changes of the night, in any order (they are sorted by time each night)."),
});

const rule = z
  .strictObject({
    program: topicSegment.describe("The program this rule selects."),
    from: dayRef.optional().describe('First evening the rule applies ("MM-DD" or "YYYY-MM-DD").'),
    to: dayRef
      .optional()
      .describe('Last evening (inclusive); "MM-DD" ranges may wrap the year (11-01..02-28).'),
    weekdays: z
      .array(z.enum(WEEKDAYS, { error: `expected one of ${WEEKDAYS.join(", ")}` }))
      .min(1)
      .optional()
      .describe("Evenings of these weekdays only."),
    dates: z
      .array(dayRef)
      .min(1)
      .max(366)
      .optional()
      .describe("Special evenings (holidays, festivals): the rule applies on these dates only."),
  })
  .superRefine((r, ctx) => {
    const yearly = (s?: string) => (s === undefined ? undefined : s.length === 5);
    if (r.from !== undefined && r.to !== undefined && yearly(r.from) !== yearly(r.to))
      ctx.addIssue({
        code: "custom",
        path: ["to"],
        message: 'give from and to in the same form: both "MM-DD" or both "YYYY-MM-DD"',
      });
    if ((r.from === undefined) !== (r.to === undefined))
      ctx.addIssue({
        code: "custom",
        path: [r.from === undefined ? "from" : "to"],
        message: "a date range needs both from and to",
      });
  });

const calendar = z.strictObject({
  id: topicSegment.describe("Calendar id, referred to by groups."),
  rules: z
    .array(rule)
    .min(1)
    .max(100)
    .describe("Checked in order for each evening; the first that matches selects the program."),
});

const pointRef = {
  device: topicSegment.describe("Device id (as configured in drivers)."),
  point: topicSegment.describe("Point id of that device."),
};

const lamp = z.strictObject({
  ...pointRef,
  name: z.string().max(100).optional().describe("Lamp or circuit name used in events."),
  readback: z
    .array(
      z.strictObject({
        point: topicSegment.describe("Level point to read back (e.g. lamp0_level)."),
        status: topicSegment
          .optional()
          .describe("DALI status byte point (e.g. lamp0_status): gear/lamp failure bits."),
        name: z.string().max(100).optional().describe("Lamp name used in events."),
      }),
    )
    .max(64)
    .default([])
    .describe(
      "Lamps of the same device read back after each change (a DALI group written at group0_level, read at each lamp): a lamp that does not follow, or reports a failure, becomes an event.",
    ),
});

const sensorBase = {
  ...pointRef,
  level: level.describe("Level the rule raises the lamps to while it applies."),
};

const group = z.strictObject({
  id: topicSegment.describe("Group id (used in commands, events and telemetry)."),
  name: z.string().max(100).optional(),
  calendar: topicSegment.describe("The calendar this group follows."),
  lamps: z
    .array(lamp)
    .min(1)
    .max(256)
    .describe(
      "Writable level points: a DALI lamp (lampN_level) or group (groupN_level) of the DALI gateway, a Modbus circuit (a boolean point: on when the level is above 0), a LoRaWAN lamp controller.",
    ),
  rated_power_w: z
    .number()
    .min(0)
    .max(1_000_000)
    .default(0)
    .describe("Power of the whole group at 100 % (W), for the energy estimate."),
  energy_point: z
    .strictObject(pointRef)
    .optional()
    .describe("A metering point (Wh or kWh counter) of this group; preferred to the estimate."),
  lux: z
    .strictObject({
      ...sensorBase,
      below: z.number().min(0).describe("The rule applies while the last reading is below (lx)."),
    })
    .optional()
    .describe("Light sensor rule: dark weather raises the level."),
  presence: z
    .strictObject({
      ...sensorBase,
      hold: duration.default(300_000).describe("How long after the last detection (default 5m)."),
    })
    .optional()
    .describe("Presence rule: a detection (true or a number above 0) raises a dimmed level."),
});

export const lightingConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    time_zone: z
      .string()
      .default("Europe/Paris")
      .refine((tz) => validTimeZone(tz), {
        error: 'expected an IANA time zone, e.g. "Europe/Paris"',
      })
      .describe("IANA time zone of the fixed times (DST handled)."),
    location: location
      .optional()
      .describe("Where the sun is computed; default: gateway.location (needed for astro events)."),
    poll: duration
      .default(30_000)
      .refine((ms) => ms >= 100 && ms <= 600_000, { error: "expected 100ms..10m" })
      .describe("How often the levels are computed and applied (default 30s)."),
    clock: z
      .strictObject({
        sync_file: z
          .string()
          .default("/run/systemd/timesync/synchronized")
          .describe(
            "File that exists once systemd-timesyncd synchronised the clock since boot; when absent, `timedatectl show -p NTPSynchronized` is asked.",
          ),
        require_sync: z
          .boolean()
          .default(true)
          .describe("Treat a clock never synchronised since boot as untrustworthy."),
        max_jump: duration
          .default(300_000)
          .describe("A wall-clock jump larger than this (vs. the monotonic clock) is distrusted."),
      })
      .prefault({}),
    default: z
      .strictObject({
        night_level: level.default(100).describe("Sunset to sunrise."),
        day_level: level.default(0),
      })
      .prefault({})
      .describe("When no calendar rule selects a program: on at night."),
    safe_state: z
      .strictObject({
        level: level.default(100).describe("Level while the clock is untrustworthy."),
        lux: z
          .strictObject({
            ...pointRef,
            below: z.number().min(0).default(30).describe("On below this (lx), else off."),
          })
          .optional()
          .describe("With a lux sensor, lamps are on only when it is dark."),
      })
      .prefault({})
      .describe("What the lamps do when the clock cannot be trusted."),
    programs: z.array(program).max(64).default([]),
    calendars: z.array(calendar).max(64).default([]),
    groups: z.array(group).max(256).default([]),
  })
  .superRefine((l, ctx) => {
    const ids = (list: { id: string }[], key: string) => {
      const seen = new Set<string>();
      list.forEach((x, i) => {
        if (seen.has(x.id))
          ctx.addIssue({
            code: "custom",
            path: [key, i, "id"],
            message: `duplicate id "${x.id}"`,
          });
        seen.add(x.id);
      });
      return seen;
    };
    const programs = ids(l.programs, "programs");
    const calendars = ids(l.calendars, "calendars");
    ids(l.groups, "groups");
    l.calendars.forEach((c, i) =>
      c.rules.forEach((r, j) => {
        if (!programs.has(r.program))
          ctx.addIssue({
            code: "custom",
            path: ["calendars", i, "rules", j, "program"],
            message: `unknown program "${r.program}" (programs: ${[...programs].join(", ") || "none"})`,
          });
      }),
    );
    l.groups.forEach((g, i) => {
      if (!calendars.has(g.calendar))
        ctx.addIssue({
          code: "custom",
          path: ["groups", i, "calendar"],
          message: `unknown calendar "${g.calendar}" (calendars: ${[...calendars].join(", ") || "none"})`,
        });
    });
  });

export type LightingConfig = z.infer<typeof lightingConfigSchema>;
export type LightingGroup = LightingConfig["groups"][number];
export type LightingProgram = LightingConfig["programs"][number];
export type LightingControl = LightingProgram["controls"][number];

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Uses astro events anywhere (then a location is needed). */
export function usesAstro(l: LightingConfig): boolean {
  return l.programs.some((p) => p.controls.some((c) => !/^\d/.test(c.at)));
}
