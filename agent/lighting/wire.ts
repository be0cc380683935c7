/**
 * Wire schemas of `cmd/lighting/get`, `cmd/lighting/set` and `cmd/lighting/override`
 * (docs/mqtt-api.md §"Lighting"), merged into the command service's tables
 * (agent/commands/schemas.ts). Strict like every request: an unknown field is an error.
 */
import { z } from "zod";
import { duration } from "../../config/common.js";
import { requestBase } from "../commands/request-base.js";

const base = requestBase;
const groupId = z.string({ error: "expected a group id (string)" }).min(1);
const date = z
  .string({ error: 'expected a date "YYYY-MM-DD"' })
  .regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'expected a date "YYYY-MM-DD"' });

export const lightingGetRequest = z.strictObject({
  ...base,
  date: date.optional().describe("The night to plan (its evening's date); default: tonight."),
  group: groupId.optional().describe("Only this group."),
});

export const lightingSetRequest = z.strictObject({
  ...base,
  lighting: z
    .record(z.string(), z.unknown(), { error: "expected the whole lighting block as an object" })
    .describe("The complete `lighting:` block, same schema as in the YAML file."),
  dry_run: z.boolean().optional().describe("Validate and plan tonight without applying."),
});

/** The longest override: a forgotten override must not hold for ever. */
export const MAX_OVERRIDE_MS = 7 * 86_400_000;

export const lightingOverrideRequest = z
  .strictObject({
    ...base,
    group: groupId.describe('Group id, or "*" for every group.'),
    level: z
      .number({ error: "expected a level 0..100 (%)" })
      .int({ error: "expected a level 0..100 (%)" })
      .min(0, { error: "expected a level 0..100 (%)" })
      .max(100, { error: "expected a level 0..100 (%)" })
      .optional()
      .describe("Level in %; without a level the group's override ends."),
    for: duration.optional().describe('How long, e.g. "2h" (at most 7d).'),
    until: z.number().int().min(0).optional().describe("Expiry, ms since the epoch."),
    until_next_event: z
      .literal(true)
      .optional()
      .describe("Holds until the next event of the group's program."),
    reason: z.string().max(200).optional().describe("In words, kept in events and the audit."),
  })
  .superRefine((r, ctx) => {
    const ends = [r.for !== undefined, r.until !== undefined, r.until_next_event === true].filter(
      Boolean,
    );
    if (r.level !== undefined && ends.length === 0)
      ctx.addIssue({
        code: "custom",
        path: ["for"],
        message:
          'missing: an override needs an end — "for" (e.g. "2h"), "until" (ms) or "until_next_event": true',
      });
    if (ends.length > 1)
      ctx.addIssue({
        code: "custom",
        path: ["for"],
        message: "give one of for, until, until_next_event",
      });
    if (r.level === undefined && ends.length > 0)
      ctx.addIssue({
        code: "custom",
        path: ["level"],
        message: "missing: without a level the override ends now (then give no end)",
      });
    if (r.for !== undefined && r.for > MAX_OVERRIDE_MS)
      ctx.addIssue({ code: "custom", path: ["for"], message: "at most 7d" });
  });

const planEntry = z.strictObject({
  ts: z.number(),
  local: z.string().describe('Local time "HH:MM" in the configured time zone.'),
  level: z.number(),
  ramp_s: z.number(),
  control: z.string(),
  source: z.enum(["program", "default"]),
  why: z.string(),
});

const override = z.strictObject({
  level: z.number(),
  start: z.number(),
  expires: z.number().nullable(),
  until_next_event: z.boolean(),
  who: z.string(),
  reason: z.string().nullable(),
});

export const lightingGroupView = z.strictObject({
  id: z.string(),
  level: z.number().nullable().describe("Last level written to the lamps."),
  source: z.enum(["override", "safe", "sensor", "program", "default"]),
  reason: z.string(),
  program: z.string().nullable().describe("The program of the night planned."),
  plan: z.array(planEntry),
  override: override.nullable(),
});

export const lightingGetResult = z.strictObject({
  version: z.number().int().nullable(),
  source: z.enum(["file", "remote"]),
  night: z.string(),
  time_zone: z.string(),
  sun: z.strictObject({
    sunset: z.number().nullable(),
    civil_dusk: z.number().nullable(),
    civil_dawn: z.number().nullable(),
    sunrise: z.number().nullable(),
  }),
  clock: z.strictObject({ trusted: z.boolean(), reason: z.string() }),
  groups: z.array(lightingGroupView),
  config: z.record(z.string(), z.unknown()),
});

export const lightingSetResult = z.strictObject({
  version: z.number().int().nullable(),
  applied: z.boolean(),
  groups: z.array(z.string()).describe("Groups of the new block."),
});

export const lightingOverrideResult = z.strictObject({
  groups: z.array(
    z.strictObject({ id: z.string(), level: z.number().nullable(), override: override.nullable() }),
  ),
});

export const lightingRequestSchemas = {
  "lighting/get": lightingGetRequest,
  "lighting/set": lightingSetRequest,
  "lighting/override": lightingOverrideRequest,
} as const;

export const lightingResultSchemas = {
  "lighting/get": lightingGetResult,
  "lighting/set": lightingSetResult,
  "lighting/override": lightingOverrideResult,
} as const;
