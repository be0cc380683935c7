/**
 * The provisioning bundle: one small YAML file an installer drops on the image's boot partition
 * (or passes to `eclor-edge provision --bundle FILE`). It names the gateway, the platform's
 * brokers and CA, and carries a single-use enrolment token with an expiry. It holds no secret that
 * opens the platform: the token only buys one certificate for this gateway id, once.
 *
 * Validated like the main config: every problem at once, each with its path and the fix.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseDocument, stringify } from "yaml";
import { z } from "zod";
import { location, topicSegment } from "../../config/common.js";
import { type ConfigProblem, formatIssues } from "../../config/issues.js";
import { configError } from "../../config/load.js";
import { allowedKeysAt } from "../../config/walk.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";

export const BUNDLE_VERSION = 1;

/** Ids the enrolment topics and the platform's own identities use: never a gateway id. */
export const RESERVED_GATEWAY_IDS = ["enroll", "platform", "enrol"] as const;

const brokerUrl = z
  .string({ error: "expected a broker URL like mqtts://broker.example.org:8883" })
  .regex(/^(mqtts|ssl|wss):\/\/[^\s]+$/, {
    error:
      "expected a TLS broker URL (mqtts://host:port): enrolment and mTLS need TLS, plain mqtt:// is refused",
  });

const pemCertificate = z
  .string({ error: "expected the platform CA certificate in PEM (-----BEGIN CERTIFICATE-----…)" })
  .superRefine((pem, ctx) => {
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
      ctx.addIssue({
        code: "custom",
        message:
          "expected the platform CA certificate in PEM (-----BEGIN CERTIFICATE-----…), as a YAML block scalar (ca: |)",
      });
      return;
    }
    try {
      const cert = new X509Certificate(pem);
      if (!cert.ca)
        ctx.addIssue({
          code: "custom",
          message: `certificate "${cert.subject.replace(/\n/g, ", ")}" is not a CA certificate (basicConstraints CA:FALSE): put the platform CA here, not a leaf certificate`,
        });
    } catch (e) {
      ctx.addIssue({
        code: "custom",
        message: `not a readable PEM certificate (${(e as Error).message}): copy the CA file as it is, with its BEGIN/END lines`,
      });
    }
  });

const isoDate = z
  .string({ error: 'expected an ISO 8601 date-time with a zone, e.g. "2026-12-01T00:00:00Z"' })
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/, {
    error: 'expected an ISO 8601 date-time with a zone, e.g. "2026-12-01T00:00:00Z"',
    abort: true,
  })
  .refine((s) => !Number.isNaN(Date.parse(s)), { error: "not a valid calendar date-time" });

export const bundleSchema = z.strictObject({
  version: z
    .literal(BUNDLE_VERSION, { error: `expected ${BUNDLE_VERSION} (the bundle format version)` })
    .describe("Bundle format version."),
  gateway: z.strictObject({
    id: topicSegment
      .refine((id) => !(RESERVED_GATEWAY_IDS as readonly string[]).includes(id), {
        error: `reserved by the platform (${RESERVED_GATEWAY_IDS.join(", ")}): choose another gateway id`,
      })
      .describe("Gateway id: becomes the certificate CN and the MQTT topic segment."),
    name: z.string().optional().describe("Human name, e.g. 'Mairie de Volmerange'."),
    commune: z
      .string({ error: "expected the commune name or INSEE code" })
      .min(1)
      .describe("Commune (name or INSEE code)."),
    location: location.optional().describe("WGS84 position of the box."),
  }),
  platform: z.strictObject({
    url: brokerUrl.describe(
      "mTLS broker listener used once enrolled (client certificate required).",
    ),
    enrolment_url: brokerUrl
      .optional()
      .describe("Enrolment listener (server TLS + enrolment identity); default: url."),
    prefix: z
      .string()
      .regex(/^[^#+\s]+[^/#+\s]$/, {
        error: "expected topic levels without wildcards or a trailing '/', e.g. eclor/v1",
      })
      .default("eclor/v1")
      .describe(
        "Topic prefix; enrolment topics are <prefix>/enroll/<gateway id>/request|response.",
      ),
    servername: z
      .string()
      .optional()
      .describe("TLS server name when it differs from the URL host."),
    ca: pemCertificate.describe(
      "Platform CA (PEM): the broker and every issued certificate chain to it.",
    ),
  }),
  enrolment: z.strictObject({
    token: z
      .string({ error: "expected the enrolment token given by the platform" })
      .min(16, { error: "expected the enrolment token given by the platform (16+ characters)" })
      .optional()
      .describe(
        "Single-use enrolment token. Deleted from the bundle once the gateway is enrolled.",
      ),
    expires: isoDate.describe("Expiry of the token (ISO 8601 with zone)."),
    username: z
      .string()
      .optional()
      .describe("Enrolment identity on the broker (ACL: enrolment topics only)."),
    password: z
      .string()
      .optional()
      .describe("Password of the enrolment identity. Deleted with the token once enrolled."),
  }),
});

export type Bundle = z.infer<typeof bundleSchema>;
export type BundleInput = z.input<typeof bundleSchema>;

function bundleError(source: string, problems: ConfigProblem[]): EdgeError {
  // Same presentation as the main config (configError), under the provisioning code.
  const e = configError(source, problems);
  return new EdgeError(ErrorCode.ProvisionBundle, e.text, e.details);
}

/** Validate an already-parsed bundle object. */
export function validateBundle(raw: unknown, source: string): Bundle {
  const result = bundleSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  throw bundleError(
    source,
    formatIssues(result.error.issues, (p) => allowedKeysAt(bundleSchema, raw, p)),
  );
}

export function parseBundleText(text: string, source: string): Bundle {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw bundleError(
      source,
      doc.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "(yaml)",
        message: e.message.split("\n")[0]!,
      })),
    );
  }
  let raw: unknown;
  try {
    // A bundle needs no aliases; a "billion laughs" alias bomb makes the yaml library throw a
    // ReferenceError (maxAliasCount, https://eemeli.org/yaml/#tojs-options): bad input, EE0701.
    raw = doc.toJS({ maxAliasCount: 20 });
  } catch (e) {
    throw bundleError(source, [
      {
        path: "(yaml)",
        message: `refused: ${(e as Error).message.split("\n")[0]!.slice(0, 120)} — a provisioning bundle needs no YAML aliases (*name)`,
      },
    ]);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw bundleError(source, [
      {
        path: "(root)",
        message: "expected a YAML mapping with version, gateway, platform, enrolment",
      },
    ]);
  }
  return validateBundle(raw, source);
}

export function loadBundleFile(file: string): Bundle {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "does not exist — copy the bundle from the platform onto the boot partition or pass --bundle FILE"
        : code === "EACCES"
          ? "is not readable by this user (run as the eclor-edge user or root)"
          : code === "EISDIR"
            ? "is a directory, expected the bundle YAML file"
            : (e as Error).message;
    throw new EdgeError(ErrorCode.ProvisionBundle, `bundle ${path} ${why}`, { path });
  }
  return parseBundleText(text, path);
}

/** YAML text of a bundle (used to store the state copy and to rewrite it without its token). */
export function bundleToYaml(bundle: BundleInput): string {
  return stringify(bundle, { lineWidth: 0 });
}

/** The bundle without its token: what stays on disk once the gateway is enrolled. */
/**
 * The bundle once enrolled: without the spent token AND without the enrolment identity's
 * password (shared by a batch of boxes, issue 14.2) — renewal uses the certificate, and a
 * re-enrolment needs a new bundle (a new token) anyway.
 */
export function withoutToken(bundle: Bundle): Bundle {
  const { token: _token, username: _user, password: _password, ...rest } = bundle.enrolment;
  return { ...bundle, enrolment: rest };
}
