/**
 * Schemas of what the gateway publishes (fixed contract, docs/mqtt-api.md and docs/asyncapi.yaml).
 * The docs' examples are validated against these in test/unit/store-mqtt-docs.test.ts, and the
 * payloads the code renders are validated against them in the integration tests.
 */
import { z } from "zod";
import { senmlUnit } from "../../config/common.js";
import type { DeviceInfo } from "../../drivers/driver.js";
import { healthReasonSchema, healthStatusSchema } from "../health/schema.js";

const quality = z.enum([
  "uncertain",
  "timeout",
  "exception",
  "frame_error",
  "comm_error",
  "codec_error",
  "offline",
]);

/** One SenML record (RFC 8428 §4) with the gateway's extensions `seq`, `q`, `qd`. */
export const telemetryRecordSchema = z
  .strictObject({
    seq: z.number().int().positive(),
    bn: z.string().optional(),
    bt: z.number().optional(),
    bu: senmlUnit.optional(),
    n: z.string().regex(/^[^/]+\/[^/]+$/, { error: "expected <device>/<point>" }),
    t: z.number(),
    u: senmlUnit.optional(),
    v: z.number().optional(),
    vb: z.boolean().optional(),
    vs: z.string().optional(),
    q: quality.optional(),
    qd: z.string().optional(),
  })
  .refine((r) => [r.v, r.vb, r.vs].filter((x) => x !== undefined).length <= 1, {
    error: "at most one of v, vb, vs",
  })
  .refine(
    (r) => r.q !== undefined || r.v !== undefined || r.vb !== undefined || r.vs !== undefined,
    {
      error: "a record without a value must carry a quality q",
    },
  );

/** The store epoch (docs/mqtt-api.md §7): the hypervisor's dedupe key is (gateway, epoch, seq). */
export const epochSchema = z.string().min(1).max(64);

export const telemetryPayloadSchema = z.strictObject({
  epoch: epochSchema,
  records: z.array(telemetryRecordSchema).min(1),
});

export const eventRecordSchema = z.strictObject({
  seq: z.number().int().positive(),
  t: z.number(),
  type: z.string().min(1),
  severity: z.enum(["info", "warning", "error"]),
  device: z.string().optional(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});

/** The `gap` event's data: what the store had to drop. */
export const gapDataSchema = z.union([
  z.strictObject({
    reason: z.literal("store_full"),
    priority: z.enum(["event", "live", "backfill"]),
    count: z.number().int().positive(),
    first_seq: z.number().int().positive(),
    last_seq: z.number().int().positive(),
  }),
  z.strictObject({
    // memory_full: the memory buffer overflowed while the database refused writes;
    // shutdown: the agent stopped while the database refused writes. Never got seqs.
    reason: z.enum(["memory_full", "shutdown"]),
    count: z.number().int().positive(),
    first_ts: z.number(),
    last_ts: z.number(),
  }),
]);

/** The `store_epoch` event's data: a new epoch begins (docs/mqtt-api.md §7). */
export const storeEpochDataSchema = z.strictObject({
  epoch: epochSchema,
  first_seq: z.number().int().positive(),
  reason: z.enum(["new_store", "upgraded"]),
  previous_epoch: epochSchema.optional(),
  previous_last_seq: z.number().int().min(0).optional(),
});

export const eventsPayloadSchema = z.strictObject({
  epoch: epochSchema,
  records: z.array(eventRecordSchema).min(1),
});

export const statePayloadSchema = z.strictObject({
  online: z.boolean(),
  reason: z.enum(["shutdown", "connection_lost"]).optional(),
  ts: z.number(),
  version: z.string(),
  config_version: z.string(),
  started_at: z.iso.datetime(),
  status: healthStatusSchema
    .optional()
    .describe("The health (agent/health/); present when online is true."),
  reasons: z.array(healthReasonSchema).optional().describe("Why the status is not ok."),
});
export type StatePayload = z.infer<typeof statePayloadSchema>;

const pointInfo = z.strictObject({
  id: z.string(),
  unit: senmlUnit.optional(),
  type: z.enum(["number", "boolean", "string"]),
  writable: z.boolean(),
  min: z.number().optional(),
  max: z.number().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  description: z.string().optional(),
});

export const inventoryPayloadSchema = z.strictObject({
  ts: z.number(),
  gateway: z.strictObject({
    id: z.string(),
    name: z.string().optional(),
    commune: z.string().optional(),
    location: z.strictObject({ lat: z.number(), lon: z.number() }).optional(),
  }),
  devices: z.array(
    z.strictObject({
      id: z.string(),
      driver: z.string(),
      kind: z.string(),
      name: z.string().optional(),
      points: z.array(pointInfo),
    }),
  ),
  /** Present when the inventory is split to fit the broker's maximum packet size (§6). */
  part: z.number().int().positive().optional(),
  parts: z.number().int().positive().optional(),
});
/** Devices come from the drivers' `inventory()` (their units are SenML symbols by contract). */
export type InventoryPayload = Omit<z.infer<typeof inventoryPayloadSchema>, "devices"> & {
  devices: DeviceInfo[];
};

/** The common frame of every command response (docs/mqtt-api.md §8). */
export const commandResponseSchema = z
  .object({
    id: z.string().nullable(),
    ok: z.boolean(),
    result: z.unknown().optional(),
    error: z.looseObject({ code: z.string(), message: z.string() }).optional(),
  })
  .refine((r) => r.ok || r.error !== undefined, { error: "a failed response carries error" });

/** Schemas by message name, as used in docs/asyncapi.yaml `components.messages`. */
export const payloadSchemas = {
  telemetry: telemetryPayloadSchema,
  events: eventsPayloadSchema,
  state: statePayloadSchema,
  inventory: inventoryPayloadSchema,
  response: commandResponseSchema,
} as const;
