/**
 * `state.json`: what enrolment and renewal are doing, for the log, `eclor-edge provision --status`
 * and `eclor-edge status`. The files next to it (key, csr, request, cert) are the truth the state
 * machine resumes from; this file is the human-readable summary and is rewritten atomically.
 */
import type { CertificateFacts } from "./crypto.js";
import { provisionPaths, readIfExists, writeFileAtomic } from "./files.js";

export type EnrolmentStatus =
  /** No enrolment state at all (no bundle seen). */
  | "none"
  /** Working through the steps, or waiting to retry after a transient failure. */
  | "enrolling"
  /** Refused in a way only a new bundle fixes (token expired/used/unknown). Still retried slowly. */
  | "failed"
  | "enrolled"
  /** Enrolled once, but the certificate expired before it could be renewed: a new bundle is needed. */
  | "expired";

export type EnrolmentStep =
  "bundle" | "key" | "csr" | "request" | "exchange" | "verify" | "store" | "cleanup" | "done";

export interface ProblemRecord {
  /** EE07xx code text plus refusal code when the platform refused. */
  code: string;
  message: string;
  at: string;
  permanent: boolean;
}

export interface RenewalState {
  status: "idle" | "renewing" | "failed";
  /** When the next renewal attempt is due. */
  due_at?: string;
  last_renewed_at?: string;
  last_error?: ProblemRecord;
}

export interface ProvisionState {
  status: EnrolmentStatus;
  step: EnrolmentStep;
  gateway?: string;
  updated_at: string;
  attempts: number;
  enrolled_at?: string;
  /** SHA-256 of the token spent at enrolment: only that token is removed from bundle files. */
  used_token_sha256?: string;
  last_error?: ProblemRecord;
  next_retry_at?: string;
  certificate?: CertificateFacts;
  renewal?: RenewalState;
}

export function readState(stateDir: string): ProvisionState | undefined {
  const text = readIfExists(provisionPaths(stateDir).state);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as ProvisionState;
  } catch {
    // Atomic writes make a torn file impossible; a hand-edited one is treated as absent.
    return undefined;
  }
}

export function writeState(stateDir: string, state: ProvisionState): void {
  writeFileAtomic(provisionPaths(stateDir).state, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

export function updateState(
  stateDir: string,
  patch: Partial<ProvisionState>,
  drop: (keyof ProvisionState)[] = [],
): ProvisionState {
  const prev = readState(stateDir) ?? {
    status: "none",
    step: "bundle",
    updated_at: "",
    attempts: 0,
  };
  const next: ProvisionState = { ...prev, ...patch, updated_at: new Date().toISOString() };
  for (const k of drop) delete next[k];
  writeState(stateDir, next);
  return next;
}

/**
 * Enrolment status for `eclor-edge status` (the CLI helper calls this): never throws, reads only
 * state.json. `{ status: "none" }` when this box was never given a bundle.
 */
export function readProvisionStatus(stateDir: string): ProvisionState {
  return readState(stateDir) ?? { status: "none", step: "bundle", updated_at: "", attempts: 0 };
}

/** One line for humans: "enrolled as gw-1, certificate valid until …" etc. */
export function describeProvisionStatus(s: ProvisionState): string {
  switch (s.status) {
    case "none":
      return "not provisioned (no bundle seen)";
    case "enrolled": {
      const until = s.certificate ? `, certificate valid until ${s.certificate.notAfter}` : "";
      const renew =
        s.renewal?.status === "failed" && s.renewal.last_error
          ? `; last renewal failed: ${s.renewal.last_error.message}`
          : "";
      return `enrolled as ${s.gateway ?? "?"}${until}${renew}`;
    }
    case "expired":
      return `certificate of ${s.gateway ?? "?"} expired${s.certificate ? ` on ${s.certificate.notAfter}` : ""}: drop a new bundle and run eclor-edge provision`;
    case "enrolling":
    case "failed": {
      const err = s.last_error ? `: ${s.last_error.message}` : "";
      const retry = s.next_retry_at ? ` (next try ${s.next_retry_at})` : "";
      return `${s.status === "failed" ? "enrolment refused" : `enrolling (step ${s.step}, attempt ${s.attempts})`}${err}${retry}`;
    }
  }
}
