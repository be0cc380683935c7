/**
 * The health model and the one status view, as zod schemas (the single source of truth): the
 * types below are inferred from them, the MQTT `status` command validates its result with
 * `statusViewSchema` (agent/commands/schemas.ts), docs/asyncapi.yaml carries their JSON Schema
 * (checked by test/unit/commands-docs.test.ts), and `eclor-edge status --json` prints the same
 * object. Field names follow docs/mqtt-api.md §1: snake_case, times in seconds since the epoch
 * unless the name says otherwise (`started_at` is ISO 8601, `*_ms` are milliseconds).
 */
import { z } from "zod";

export const HEALTH_STATUSES = ["ok", "degraded", "failed"] as const;
export const healthStatusSchema = z
  .enum(HEALTH_STATUSES)
  .describe(
    "ok: everything works. degraded: the gateway does its job in part (a driver failed, the uplink is down, the event loop is slow). failed: it cannot keep data (the store cannot be written).",
  );
export type HealthStatus = z.infer<typeof healthStatusSchema>;

export const healthReasonSchema = z.strictObject({
  component: z.enum(["store", "uplink", "driver", "event_loop"]),
  driver: z.string().optional().describe("The driver instance id, for component driver."),
  severity: z.enum(["degraded", "failed"]),
  message: z.string().describe("What is wrong, in plain words, with the error when known."),
});
export type HealthReason = z.infer<typeof healthReasonSchema>;

/** What the retained `state` message carries (docs/mqtt-api.md §5). */
export const healthSummarySchema = z.strictObject({
  status: healthStatusSchema,
  reasons: z.array(healthReasonSchema).describe("Empty when status is ok."),
});
export type HealthSummary = z.infer<typeof healthSummarySchema>;

export const DRIVER_STATES = ["started", "stopped", "failed"] as const;

const deviceView = z.strictObject({
  id: z.string(),
  online: z.boolean(),
  last_good_ts: z.number().optional(),
  error_count: z.number().int(),
  last_error: z.string().optional(),
  last_error_ts: z.number().optional(),
});

const driverView = z.strictObject({
  id: z.string(),
  kind: z.string().describe("Driver kind: modbus, lorawan, tic, mbus."),
  state: z
    .enum(DRIVER_STATES)
    .describe(
      "started: running. stopped: not running (being reconfigured or stopped). failed: could not start, or its bus cannot be used (no device answers).",
    ),
  error: z.string().optional().describe("Why it failed, in plain words."),
  detail: z.string().optional().describe("State of the bus or listener, in plain words."),
  devices: z.array(deviceView),
  counters: z.record(z.string(), z.number()).optional().describe("Protocol counters."),
});

export const statusViewSchema = z.strictObject({
  gateway: z.strictObject({ id: z.string(), name: z.string().optional() }),
  version: z.string(),
  config_version: z
    .string()
    .describe("The configuration in force, as in the state message (a hash of it)."),
  pid: z.number().int(),
  started_at: z.iso.datetime(),
  now: z.number().describe("Time of this view."),
  status: healthStatusSchema,
  reasons: z.array(healthReasonSchema),
  event_loop: z.strictObject({
    lag_p99_ms: z.number().describe("99th percentile of the event-loop delay, last window."),
    lag_max_ms: z.number().describe("Largest event-loop delay, last window."),
  }),
  provisioning: z
    .strictObject({
      status: z.string().describe("none | enrolling | failed | enrolled | expired"),
      summary: z.string(),
      attention: z.boolean().describe("A person must act."),
    })
    .optional()
    .describe("Zero-touch enrolment, when configured."),
  uplink: z.strictObject({
    connected: z.boolean(),
    broker: z.string().describe("Broker URL without credentials."),
    last_publish_ts: z.number().optional(),
    last_error: z.string().optional(),
    backlog: z.number().int().describe("Records waiting to be sent."),
    backlog_oldest_ts: z.number().optional(),
  }),
  store: z.strictObject({
    writable: z.boolean(),
    path: z.string(),
    bytes: z.number().int(),
    max_bytes: z.number().int(),
    unsent: z.number().int(),
    oldest_unsent_ts: z.number().optional(),
    gaps: z.number().int().describe("Gap events since the agent started."),
    dropped_readings: z.number().int(),
    error: z.string().optional(),
  }),
  drivers: z.array(driverView),
});
export type StatusView = z.infer<typeof statusViewSchema>;
export type DriverView = StatusView["drivers"][number];
