/**
 * The configuration schema: the single source of truth for types (`z.infer`), defaults and the
 * documentation shown by editors (config/schema.json is generated from it; a test fails when the
 * checked-in file is stale). Unknown keys are errors everywhere (strict objects): a typo in a key
 * must never be a silent no-op on a street cabinet.
 */
import { z } from "zod";
import { checkSerialLines } from "./serial-lines.js";
import { driverSchemas } from "../drivers/schemas.js";
import { commandsConfigSchema } from "./commands.js";
import { lightingConfigSchema } from "./lighting.js";
import { provisioningConfigSchema } from "./provisioning.js";
import { intRange, location, topicSegment } from "./common.js";
import { SECRET_NAME } from "./remote-refs.js";

export const CONFIG_VERSION = 1;

const gateway = z.strictObject({
  id: topicSegment.describe(
    "Gateway id: unique in the territory, used in every MQTT topic (eclor/v1/<id>/…).",
  ),
  name: z.string().optional().describe("Human name, e.g. 'Mairie de Volmerange'."),
  commune: z.string().optional().describe("Commune (name or INSEE code)."),
  location: location.optional().describe("WGS84 position of the box."),
});

const tls = z.strictObject({
  ca: z
    .string()
    .optional()
    .describe("Path of the CA certificate (PEM) the broker's certificate must chain to."),
  cert: z
    .string()
    .optional()
    .describe("Path of this gateway's client certificate (PEM), for mTLS."),
  key: z.string().optional().describe("Path of this gateway's private key (PEM), for mTLS."),
  reject_unauthorized: z
    .boolean()
    .default(true)
    .describe("Verify the broker certificate. Only set false in a lab."),
  servername: z
    .string()
    .optional()
    .describe("TLS server name (SNI) when it differs from the URL host."),
});

const uplink = z.strictObject({
  url: z
    .string({ error: "expected a broker URL like mqtts://broker.example.org:8883" })
    .regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/, {
      error: "expected a broker URL like mqtt://host:1883 or mqtts://host:8883",
    })
    .describe("MQTT broker of the hypervisor."),
  client_id: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .describe("MQTT client id; default: the gateway id."),
  protocol_version: z
    .union([z.literal(5), z.literal(4)], { error: "expected 5 (MQTT 5) or 4 (MQTT 3.1.1)" })
    .default(5)
    .describe("MQTT protocol: 5 (default) or 4 for 3.1.1 brokers."),
  username: z.string().optional().describe('User name; may be "${ENV_VAR}" or "file:/path".'),
  password: z
    .string()
    .optional()
    .describe('Password; keep it out of the file with "${ENV_VAR}" or "file:/path".'),
  tls: tls.optional(),
  prefix: z
    .string()
    .regex(/^[^#+\s]+[^/#+\s]$/, {
      error: "expected topic levels without wildcards or a trailing '/', e.g. eclor/v1",
    })
    .default("eclor/v1")
    .describe("Topic prefix; topics are <prefix>/<gateway id>/…"),
  keepalive_s: intRange(5, 3600)
    .default(30)
    .describe("MQTT keepalive in seconds; a half-open link is detected after 1.5× this."),
  reconnect_min_ms: intRange(100, 600_000)
    .default(1000)
    .describe("First reconnect delay (ms); doubles up to reconnect_max_ms, with jitter."),
  reconnect_max_ms: intRange(1000, 3_600_000)
    .default(60_000)
    .describe("Cap of the reconnect delay (ms)."),
  batch_size: intRange(1, 10_000)
    .default(500)
    .describe("Readings per telemetry message (also bounded by the broker's maximum packet size)."),
  inflight: intRange(1, 1000)
    .default(16)
    .describe("Telemetry messages in flight (awaiting PUBACK) at once."),
});

const store = z.strictObject({
  path: z.string().optional().describe("SQLite file; default <state_dir>/store.db."),
  max_bytes: z
    .number()
    .int()
    .min(1_048_576, { error: "expected at least 1048576 (1 MiB)" })
    .default(512 * 1024 * 1024)
    .describe(
      "Upper bound of the outbox size in bytes; when reached, the oldest lowest-priority readings are dropped and a gap event is queued.",
    ),
  flush_ms: intRange(1, 60_000)
    .default(200)
    .describe("Group commit: flush buffered readings at least this often (ms)."),
  flush_count: intRange(1, 100_000)
    .default(1000)
    .describe("Group commit: flush as soon as this many readings are buffered."),
  history_days: z
    .number()
    .min(0)
    .max(3650)
    .default(30)
    .describe("Days sent readings stay queryable for history/replay."),
  cleanup_interval_ms: intRange(1000, 86_400_000)
    .default(3_600_000)
    .describe("How often expired history is deleted (ms)."),
  backfill_after_ms: intRange(1000, 31_536_000_000)
    .default(3_600_000)
    .describe(
      "A reading acquired longer ago than this when it reaches the store (a meter's load profile, a late LoRaWAN frame) is historical backfill, sent after live telemetry (ms).",
    ),
  memory_max: intRange(1000, 10_000_000)
    .default(100_000)
    .describe(
      "Readings held in memory while the database cannot be written (corrupt, disk full, read-only); beyond this the oldest are dropped and counted in a gap event.",
    ),
  retry_ms: intRange(100, 600_000)
    .default(5000)
    .describe("Retry interval (ms) for reopening or writing an unavailable database."),
});

const control = z.strictObject({
  socket: z
    .string()
    .default("/run/eclor-edge/control.sock")
    .describe("Unix socket of the local control API (mode 0660)."),
});

const log = z.strictObject({
  level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});

const driverUnion = z.discriminatedUnion("driver", driverSchemas);

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe("Editor hint: path or URL of config/schema.json."),
    version: z
      .literal(CONFIG_VERSION, {
        error: `expected ${CONFIG_VERSION} (the config file format version)`,
      })
      .describe("Config file format version."),
    gateway,
    state_dir: z
      .string()
      .default("/var/lib/eclor-edge")
      .describe("Directory of the store and other durable state."),
    log: log.prefault({}),
    secrets: z
      .record(
        z.string().regex(SECRET_NAME, {
          error:
            "expected a secret name: letters, digits, _ . - (at most 64, not starting with a digit)",
        }),
        z.string(),
      )
      .default({})
      .describe(
        "Named secrets this box exports to remote configurations (config/set), each a value or a file:/${ENV} reference; a remote configuration uses one as secret:NAME in a secret field and never reads it back.",
      ),
    uplink,
    store: store.prefault({}),
    control: control.prefault({}),
    commands: commandsConfigSchema
      .prefault({})
      .describe("Command router limits, remote configuration and optional command signing."),
    provisioning: provisioningConfigSchema
      .optional()
      .describe("Zero-touch enrolment with a provisioning bundle, and certificate renewal."),
    lighting: lightingConfigSchema
      .optional()
      .describe(
        "Street lighting: calendars, programs, groups of lamps (agent/lighting/README.md).",
      ),
    drivers: z
      .array(driverUnion)
      .default([])
      .describe("Field buses and listeners, each with its devices."),
  })
  .superRefine((cfg, ctx) => {
    // The sun is computed where the lamps are: the default state needs sunset and sunrise.
    if (cfg.lighting && !cfg.lighting.location && !cfg.gateway.location)
      ctx.addIssue({
        code: "custom",
        path: ["lighting", "location"],
        message: "missing: give lighting.location or gateway.location {lat, lon} (sun times)",
      });
    // Driver and device ids become topic segments and SQL keys: they must be unique.
    const driverIds = new Map<string, number>();
    const deviceIds = new Map<string, string>();
    cfg.drivers.forEach((d, i) => {
      if (driverIds.has(d.id)) {
        ctx.addIssue({
          code: "custom",
          path: ["drivers", i, "id"],
          message: `duplicate driver id "${d.id}" (already used by drivers[${driverIds.get(d.id)}])`,
        });
      } else driverIds.set(d.id, i);
      d.devices.forEach((dev, j) => {
        const here = `drivers[${i}].devices[${j}]`;
        const prev = deviceIds.get(dev.id);
        if (prev)
          ctx.addIssue({
            code: "custom",
            path: ["drivers", i, "devices", j, "id"],
            message: `duplicate device id "${dev.id}" (already used by ${prev}); device ids must be unique in the gateway`,
          });
        else deviceIds.set(dev.id, here);
      });
    });
    checkSerialLines(cfg.drivers, ctx);
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type { DriverConfig } from "../drivers/schemas.js";
export type UplinkConfig = Config["uplink"];
export type StoreConfig = Config["store"];
