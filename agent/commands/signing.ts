/**
 * Optional Ed25519 command signing (defence in depth when the broker cannot be fully trusted).
 *
 * A signed request carries, beside its own fields, `ts` (ms since the epoch), `nonce` (16-128
 * characters from A-Z a-z 0-9 _ -) and `sig` (base64 Ed25519 signature, RFC 8032). The signature
 * covers the UTF-8 bytes of
 *
 *     "eclor-cmd-v1\n" + <gateway id> + "\n" + <command name> + "\n" + JCS(request without sig)
 *
 * where JCS is the RFC 8785 canonical JSON (see canonical.ts): binding the gateway id and the
 * command name means a signed command cannot be replayed on another gateway or as another
 * command. `ts` must be within `commands.signing.max_skew` of the gateway clock, and a nonce is
 * accepted once (nonces are persisted in SQLite and forgotten after twice the window, when their
 * timestamp alone would refuse them).
 */
import { type KeyObject, verify } from "node:crypto";
import type { Database, Statement } from "better-sqlite3";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { canonicalJson } from "../../config/canonical.js";
import { migrateControlPlane } from "./db.js";

export const SIGNING_CONTEXT = "eclor-cmd-v1";
const NONCE_RE = /^[A-Za-z0-9_-]{16,128}$/;

export function signingInput(
  gatewayId: string,
  name: string,
  request: Record<string, unknown>,
): Buffer {
  const { sig: _sig, ...rest } = request;
  return Buffer.from(`${SIGNING_CONTEXT}\n${gatewayId}\n${name}\n${canonicalJson(rest)}`, "utf8");
}

export interface VerifierOptions {
  db: Database;
  publicKey: KeyObject;
  gatewayId: string;
  maxSkewMs: number;
  now?: () => number;
}

const sigError = (message: string) => new EdgeError(ErrorCode.CommandSignature, message);

export class SignatureVerifier {
  private readonly insertNonce: Statement<[string, number]>;
  private readonly pruneNonces: Statement<[number]>;
  private readonly now: () => number;

  constructor(private readonly opts: VerifierOptions) {
    migrateControlPlane(opts.db);
    this.insertNonce = opts.db.prepare("INSERT INTO cmd_nonces (nonce, ts) VALUES (?, ?)");
    this.pruneNonces = opts.db.prepare("DELETE FROM cmd_nonces WHERE ts < ?");
    this.now = opts.now ?? Date.now;
  }

  /** Throws EdgeError(CommandSignature) unless `request` is correctly signed, fresh and new. */
  check(name: string, request: Record<string, unknown>): void {
    const { sig, ts, nonce } = request;
    if (typeof sig !== "string" || sig === "") {
      throw sigError(
        "this gateway accepts only signed commands: add ts, nonce and sig (Ed25519, see docs/mqtt-api.md)",
      );
    }
    if (typeof ts !== "number" || !Number.isInteger(ts))
      throw sigError("ts: expected the signing time in ms since the epoch (integer)");
    if (typeof nonce !== "string" || !NONCE_RE.test(nonce))
      throw sigError("nonce: expected 16-128 characters from A-Z a-z 0-9 _ -");
    const now = this.now();
    if (Math.abs(now - ts) > this.opts.maxSkewMs) {
      throw sigError(
        `stale or future timestamp: ts is ${Math.round((now - ts) / 1000)} s from the gateway clock (allowed ±${this.opts.maxSkewMs / 1000} s)`,
      );
    }
    const signature = Buffer.from(sig, "base64");
    let valid = false;
    try {
      valid =
        signature.length === 64 &&
        verify(
          null,
          signingInput(this.opts.gatewayId, name, request),
          this.opts.publicKey,
          signature,
        );
    } catch {
      valid = false;
    }
    if (!valid)
      throw sigError(
        "bad signature: not signed by the configured hypervisor key (commands.signing.public_key)",
      );
    // Record the nonce only for a valid signature, so nobody can burn the hypervisor's nonces.
    this.pruneNonces.run(now - 2 * this.opts.maxSkewMs);
    try {
      this.insertNonce.run(nonce, ts);
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY")
        throw sigError(`replayed nonce ${nonce}: this signed command was already received`);
      throw e;
    }
  }
}
