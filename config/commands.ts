/**
 * The `commands:` block of the configuration: limits of the command router, remote configuration
 * and optional Ed25519 signing. Defaults are declared here once (see docs/mqtt-api.md, "Commands").
 */
import { z } from "zod";
import { duration, intRange } from "./common.js";
import { parsePublicKey } from "./ed25519.js";

const signing = z.strictObject({
  public_key: z
    .string({
      error:
        "expected the hypervisor's Ed25519 public key: PEM (BEGIN PUBLIC KEY) or base64 of the 32 raw key bytes",
    })
    .min(1)
    .superRefine((text, ctx) => {
      try {
        parsePublicKey(text);
      } catch (e) {
        ctx.addIssue({
          code: "custom",
          message: `not a usable Ed25519 public key (${(e as Error).message}): give the PEM "-----BEGIN PUBLIC KEY-----…" or base64 of the 32 raw bytes`,
        });
      }
    })
    .describe(
      'Ed25519 public key of the hypervisor: PEM ("-----BEGIN PUBLIC KEY-----…"), base64 of the DER SPKI, or base64 of the 32 raw bytes; may be "file:/etc/eclor-edge/hypervisor.pub".',
    ),
  max_skew: duration
    .prefault("5m")
    .describe(
      "Largest difference between a command's `ts` and the gateway clock (default 5m); older or future commands are refused.",
    ),
});

export const commandsConfigSchema = z.strictObject({
  timeout: duration
    .prefault("10s")
    .describe(
      "Default time limit of one command (a device write, a read…); a request may ask for less with `timeout_ms`.",
    ),
  rate_limit: z
    .strictObject({
      burst: intRange(1, 1000).default(5).describe("Writes a point accepts back to back."),
      per_minute: intRange(1, 6000)
        .default(30)
        .describe("Sustained writes per minute per point (token bucket refill)."),
    })
    .prefault({})
    .describe(
      "Per-point write rate limit: protects relays and lamp drivers from a runaway hypervisor.",
    ),
  read_rate_limit: z
    .strictObject({
      burst: intRange(1, 1000).default(10).describe("Reads a device accepts back to back."),
      per_minute: intRange(1, 6000)
        .default(120)
        .describe("Sustained `read` commands per minute per device (token bucket refill)."),
    })
    .prefault({})
    .describe(
      "Per-device limit of `read` commands (each goes to the bus at once, bypassing schedules): a flood of reads cannot starve polling.",
    ),
  max_in_flight: intRange(1, 256)
    .default(16)
    .describe(
      "MQTT commands of one kind (write, read, …) handled at once; beyond, they are answered CommandBusy. history/replay/config take at most 2.",
    ),
  journal_days: z
    .number()
    .min(1)
    .max(3650)
    .default(30)
    .describe(
      "Days a command id is remembered (a repeated id returns the stored result and writes nothing).",
    ),
  remote_config: z
    .boolean()
    .default(true)
    .describe(
      "Accept `config/set` from the hypervisor. false: the local file is the only configuration.",
    ),
  rollback_window: duration
    .prefault("30s")
    .describe(
      "A configuration applied by `config/set` must be healthy (drivers started, uplink connected) within this window, or the previous one is restored.",
    ),
  signing: signing
    .optional()
    .describe(
      "When set, MQTT commands must be signed by the hypervisor's Ed25519 key (ts + nonce, replay-protected). Local technician commands are not affected.",
    ),
});

export type CommandsConfig = z.infer<typeof commandsConfigSchema>;
