/**
 * Wire schemas of the MQTT commands (requests on `<prefix>/<gw>/cmd/<name>`, responses on the
 * MQTT 5 response topic or `<prefix>/<gw>/res/<name>`). The code validates with these, and the
 * docs test validates the examples of docs/mqtt-api.md and docs/asyncapi.yaml against them.
 * Requests are strict: an unknown field is an error (a typo must not be a silent no-op).
 */
import { z } from "zod";
import { statusViewSchema } from "../health/schema.js";
import { lightingRequestSchemas, lightingResultSchemas } from "../lighting/wire.js";
import { requestBase } from "./request-base.js";

const base = requestBase;
const deviceId = z.string({ error: "expected a device id (string)" }).min(1);
const pointId = z.string({ error: "expected a point id (string)" }).min(1);
export const valueSchema = z.union([z.number(), z.boolean(), z.string()], {
  error: "expected a number, a boolean or a string",
});
const timeoutMs = z
  .number({ error: "expected a time limit in ms, integer 1..600000" })
  .int({ error: "expected a time limit in ms, integer 1..600000" })
  .min(1, { error: "expected a time limit in ms, integer 1..600000" })
  .max(600_000, { error: "expected a time limit in ms, integer 1..600000" })
  .optional();
const tsMs = (what: string) =>
  z
    .number({ error: `expected ${what} in ms since the epoch (integer)` })
    .int({ error: `expected ${what} in ms since the epoch (integer)` })
    .min(0, { error: `expected ${what} in ms since the epoch (integer)` });
const seq = (what: string) =>
  z
    .number({ error: `expected ${what}: a seq number (integer >= 1)` })
    .int({ error: `expected ${what}: a seq number (integer >= 1)` })
    .min(1, { error: `expected ${what}: a seq number (integer >= 1)` });

export const pingRequest = z.strictObject({ ...base });
export const statusRequest = z.strictObject({ ...base });
export const resyncRequest = z.strictObject({ ...base });
export const configGetRequest = z.strictObject({ ...base });

export const writeRequest = z
  .strictObject({
    ...base,
    device: deviceId,
    point: pointId.optional().describe("One point to write (with `value`)."),
    value: valueSchema.optional(),
    values: z
      .record(z.string(), valueSchema, {
        error: 'expected an object of point → value, e.g. {"dim": 40}',
      })
      .optional()
      .describe("Several points of the device, written in this order."),
    verify: z.boolean().optional().describe("Read back after writing (default true)."),
    confirmed: z
      .boolean()
      .optional()
      .describe(
        "LoRaWAN devices only: send a confirmed downlink (the device ACKs it; resent up to confirmed_retries times).",
      ),
    timeout_ms: timeoutMs,
  })
  .superRefine((r, ctx) => {
    const single = r.point !== undefined || r.value !== undefined;
    if (single && r.values !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        message: "give either point + value or values, not both",
      });
    } else if (!single && r.values === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["point"],
        message: "missing: give point + value, or values {point: value, …}",
      });
    } else if (single && r.point === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["point"],
        message: "missing: the point to write the value to",
      });
    } else if (single && r.value === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        message: "missing: the value to write to the point",
      });
    } else if (r.values !== undefined && Object.keys(r.values).length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        message: "empty: give at least one point → value",
      });
    }
  });

export const readRequest = z.strictObject({
  ...base,
  device: deviceId,
  points: z
    .array(pointId, { error: "expected a list of point ids" })
    .optional()
    .describe("Default: every point of the device."),
  timeout_ms: timeoutMs,
});

export const historyRequest = z
  .strictObject({
    ...base,
    device: deviceId.optional(),
    point: pointId.optional().describe("Needs `device`."),
    from: tsMs("from"),
    to: tsMs("to").describe("Exclusive end of the range."),
    limit: z
      .number({ error: "expected integer 1..1000" })
      .int({ error: "expected integer 1..1000" })
      .min(1, { error: "expected integer 1..1000" })
      .max(1000, { error: "expected integer 1..1000" })
      .default(500),
    after_seq: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("Paging: the `next_after_seq` of the previous page."),
  })
  .superRefine((r, ctx) => {
    if (r.to < r.from)
      ctx.addIssue({ code: "custom", path: ["to"], message: "must not be before from" });
    if (r.point !== undefined && r.device === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["device"],
        message: "missing: a point is named within its device",
      });
    }
  });

export const REPLAY_MAX = 100_000;
export const replayRequest = z
  .strictObject({ ...base, from_seq: seq("from_seq"), to_seq: seq("to_seq") })
  .superRefine((r, ctx) => {
    if (r.to_seq < r.from_seq)
      ctx.addIssue({ code: "custom", path: ["to_seq"], message: "must not be below from_seq" });
    else if (r.to_seq - r.from_seq >= REPLAY_MAX) {
      ctx.addIssue({
        code: "custom",
        path: ["to_seq"],
        message: `at most ${REPLAY_MAX} seq per replay: split the range`,
      });
    }
  });

export const configSetRequest = z.strictObject({
  ...base,
  config: z
    .record(z.string(), z.unknown(), {
      error: "expected the whole configuration as an object (the YAML file as JSON)",
    })
    .describe("The complete configuration, same schema as the YAML file."),
  dry_run: z.boolean().optional().describe("Validate and show the plan without applying."),
});

export const requestSchemas = {
  ping: pingRequest,
  status: statusRequest,
  write: writeRequest,
  read: readRequest,
  history: historyRequest,
  replay: replayRequest,
  "config/get": configGetRequest,
  "config/set": configSetRequest,
  resync: resyncRequest,
  ...lightingRequestSchemas,
} as const;

export type CommandName = keyof typeof requestSchemas;
export const COMMAND_NAMES = Object.keys(requestSchemas) as CommandName[];
export type RequestOf<N extends CommandName> = z.infer<(typeof requestSchemas)[N]>;

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(requestSchemas, name);
}

// ---- responses ---------------------------------------------------------------------------------

export const errorSchema = z.strictObject({
  code: z.string().describe("Stable error name, e.g. CommandRefused."),
  ecode: z.number().int().describe("Its number, e.g. 503 (EE0503 in logs and docs)."),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const responseSchema = z
  .strictObject({
    id: z
      .string()
      .nullable()
      .describe("The request's id; null when the request had none readable."),
    ok: z.boolean(),
    result: z.unknown().optional(),
    error: errorSchema.optional(),
    duplicate: z
      .literal(true)
      .optional()
      .describe(
        "Repeated id: the stored response of the first execution; nothing was executed again.",
      ),
  })
  .superRefine((r, ctx) => {
    if (r.ok && r.error)
      ctx.addIssue({ code: "custom", path: ["error"], message: "an ok response has no error" });
    if (!r.ok && !r.error)
      ctx.addIssue({ code: "custom", path: ["error"], message: "a failed response has an error" });
  });
export type CommandResponse = z.infer<typeof responseSchema>;

const senmlRecord = z.looseObject({
  seq: z.number().int(),
  n: z.string(),
  t: z.number(),
  u: z.string().optional(),
  v: z.number().optional(),
  vb: z.boolean().optional(),
  vs: z.string().optional(),
  q: z.string().optional(),
  qd: z.string().optional(),
});

const pointWrite = z.strictObject({
  point: z.string(),
  value: valueSchema,
  ok: z.boolean(),
  queued: z.boolean().optional(),
  read_back: valueSchema.nullable().optional(),
  detail: z.string().optional(),
});

export const resultSchemas = {
  ping: z.strictObject({
    pong: z.literal(true),
    ts: z.number(),
    version: z.string(),
    uptime_s: z.number(),
  }),
  // The one status view, the same object as `eclor-edge status --json` (agent/health/schema.ts).
  status: statusViewSchema,
  write: z.strictObject({ device: z.string(), results: z.array(pointWrite) }),
  read: z.strictObject({
    device: z.string(),
    readings: z.array(
      z.strictObject({
        point: z.string(),
        ts: z.number(),
        value: valueSchema.nullable(),
        unit: z.string().optional(),
        quality: z.string(),
        detail: z.string().optional(),
      }),
    ),
  }),
  history: z.strictObject({
    epoch: z.string().describe("The store epoch of these records (docs/mqtt-api.md §7)."),
    records: z.array(senmlRecord),
    next_after_seq: z
      .number()
      .int()
      .nullable()
      .describe(
        "Pass as after_seq for the next page; null on the last page. A page examines a bounded seq range, so it may hold fewer records than `limit` (even none) and still have a next page.",
      ),
  }),
  replay: z.strictObject({
    from_seq: z.number().int(),
    to_seq: z.number().int(),
    count: z.number().int().describe("Records published again."),
    epoch: z.string().describe("The store epoch of the replayed records."),
    missing: z
      .number()
      .int()
      .describe(
        "Seq numbers of the range that were assigned but are no longer stored (expired or dropped).",
      ),
    never_assigned: z
      .strictObject({ from_seq: z.number().int(), to_seq: z.number().int() })
      .nullable()
      .describe("The part of the range above the highest seq this epoch assigned so far."),
    too_large: z
      .array(z.number().int())
      .optional()
      .describe("Seqs not replayed: each alone exceeds the broker's maximum packet size."),
  }),
  "config/get": z.strictObject({
    version: z.number().int().nullable(),
    source: z.enum(["file", "remote"]),
    who: z.string().nullable(),
    ts: z.number().nullable(),
    file: z.string().nullable(),
    config: z.record(z.string(), z.unknown()),
  }),
  "config/set": z.strictObject({
    version: z.number().int().nullable(),
    applied: z.boolean(),
    restarted: z
      .array(z.string())
      .describe("Drivers stopped and started again with their new block."),
    reconfigured: z
      .array(z.strictObject({ driver: z.string(), devices: z.array(z.string()) }))
      .describe(
        "Drivers updated in place: only the listed devices (added, removed or changed) were restarted; the other devices kept polling.",
      ),
    started: z.array(z.string()),
    stopped: z.array(z.string()),
    pending_restart: z
      .array(z.string())
      .describe(
        "Changed sections that take effect at the next agent start (log, store, commands, gateway; uplink only on an agent that cannot reconnect it live).",
      ),
  }),
  resync: z.strictObject({ republished: z.array(z.string()) }),
  ...lightingResultSchemas,
} as const satisfies Record<CommandName, z.ZodType>;

export type ResultOf<N extends CommandName> = z.infer<(typeof resultSchemas)[N]>;

/** A response of command `name`: the common frame, and a `result` of that command when ok. */
export function responseSchemaFor(name: CommandName) {
  return responseSchema.superRefine((r, ctx) => {
    if (!r.ok) return;
    const res = resultSchemas[name].safeParse(r.result);
    if (!res.success) {
      for (const i of res.error.issues)
        ctx.addIssue({ code: "custom", path: ["result", ...i.path], message: i.message });
    }
  });
}

const camel = (name: string) => name.replace(/\/(\w)/g, (_m, c: string) => c.toUpperCase());

/**
 * Schemas by AsyncAPI message name (`writeRequest`, `writeResponse`, `configSetRequest`…), for the
 * docs test: every example in docs/asyncapi.yaml and docs/mqtt-api.md validates against these.
 */
export const commandDocSchemas: Record<string, z.ZodType> = Object.fromEntries(
  COMMAND_NAMES.flatMap((n): [string, z.ZodType][] => [
    [`${camel(n)}Request`, requestSchemas[n]],
    [`${camel(n)}Response`, responseSchemaFor(n)],
  ]),
);
