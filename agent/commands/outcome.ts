/**
 * The result of one command, as stored in the journal and sent in responses:
 * `{ ok: true, result }` or `{ ok: false, error: { code, ecode, message, details? } }`.
 * `code` is the stable EdgeError code name (e.g. `CommandRefused`), `ecode` its number (503),
 * so the hypervisor can branch on either.
 */
import { ErrorCode, describeError, isEdgeError } from "../../core/errors.js";

export interface ErrorBody {
  code: string;
  ecode: number;
  message: string;
  details?: Record<string, unknown>;
}

export type Outcome<R = unknown> = { ok: true; result: R } | { ok: false; error: ErrorBody };

export function errorBody(e: unknown): ErrorBody {
  if (isEdgeError(e)) {
    return {
      code: e.codeName,
      ecode: e.code,
      message: e.text,
      ...(e.details ? { details: { ...e.details } } : {}),
    };
  }
  return { code: "CommandFailed", ecode: ErrorCode.CommandFailed, message: describeError(e) };
}

export function failure(e: unknown): { ok: false; error: ErrorBody } {
  return { ok: false, error: errorBody(e) };
}
