/**
 * The enrolment exchange on MQTT (documented in docs/mqtt-api.md, "Enrolment"):
 *
 *   gateway  → <prefix>/enroll/<gw>/request   QoS 1, not retained
 *   platform → <prefix>/enroll/<gw>/response  QoS 1, not retained
 *
 * Both ends validate every message with these schemas. The gateway only trusts a response whose
 * gateway id and request id match its own pending request; the platform is idempotent on
 * (token, public key) so a gateway that lost power after sending can ask again.
 */
import { z } from "zod";

export const ENROLL_PROTOCOL_VERSION = 1;

export function enrollTopics(
  prefix: string,
  gatewayId: string,
): { request: string; response: string } {
  const base = `${prefix}/enroll/${gatewayId}`;
  return { request: `${base}/request`, response: `${base}/response` };
}

const common = {
  v: z.literal(ENROLL_PROTOCOL_VERSION),
  gateway: z.string().min(1).max(64),
  request_id: z.string().min(8).max(64),
};

export const enrolRequestSchema = z.strictObject({
  ...common,
  type: z.literal("enrol"),
  csr: z.string().min(1),
  token: z.string().min(16),
  commune: z.string().optional(),
  name: z.string().optional(),
  location: z.strictObject({ lat: z.number(), lon: z.number() }).optional(),
  agent_version: z.string().optional(),
});

export const renewRequestSchema = z.strictObject({
  ...common,
  type: z.literal("renew"),
  csr: z.string().min(1),
  /** The certificate in use now. */
  certificate: z.string().min(1),
  /** base64 signature by the current key over proofPayload(gateway, request_id, csr). */
  proof: z.string().min(1),
  agent_version: z.string().optional(),
});

export const requestSchema = z.discriminatedUnion("type", [enrolRequestSchema, renewRequestSchema]);
export type EnrolRequest = z.infer<typeof enrolRequestSchema>;
export type RenewRequest = z.infer<typeof renewRequestSchema>;
export type EnrollRequest = z.infer<typeof requestSchema>;

/** Stable refusal reasons (the hypervisor team implements the same list). */
export const refusalCodes = [
  "token_unknown",
  "token_expired",
  "token_used",
  "gateway_mismatch",
  "csr_invalid",
  "cn_mismatch",
  "proof_invalid",
  "certificate_invalid",
  "bad_request",
  "internal",
] as const;
export type RefusalCode = (typeof refusalCodes)[number];

/** Refusals that a retry with the same bundle cannot fix: the installer needs a new bundle. */
export const PERMANENT_REFUSALS: ReadonlySet<RefusalCode> = new Set([
  "token_unknown",
  "token_expired",
  "token_used",
  "gateway_mismatch",
]);

export const responseSchema = z.discriminatedUnion("ok", [
  z.strictObject({
    ...common,
    ok: z.literal(true),
    certificate: z.string().min(1),
    /** Initial configuration of the gateway (enrolment only): a config file object. */
    config: z.record(z.string(), z.unknown()).optional(),
  }),
  z.strictObject({
    ...common,
    ok: z.literal(false),
    error: z.strictObject({ code: z.enum(refusalCodes), message: z.string() }),
  }),
]);
export type EnrollResponse = z.infer<typeof responseSchema>;
