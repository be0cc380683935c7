/**
 * The local control protocol spoken over the agent's Unix socket: newline-delimited JSON, one
 * object per line, requests carrying an `id` the responses repeat (model: JSON-RPC 2.0, without
 * its envelope noise). A request gets exactly one final response (`ok` true or false). Streaming
 * methods (`tail`, `logs` with follow, `buffer.export`) first send any number of `data` frames
 * with the same id, then the final response — or never, until the client sends `cancel` or hangs
 * up, for endless streams.
 *
 *   → {"id":1,"method":"status"}
 *   ← {"id":1,"ok":true,"result":{…}}
 *   → {"id":2,"method":"tail","params":{"device":"lamp-1"}}
 *   ← {"id":2,"data":{"kind":"reading",…}}          (repeated)
 *   → {"id":3,"method":"cancel","params":{"id":2}}
 *   ← {"id":2,"ok":true,"result":{"cancelled":true}}
 *   ← {"id":3,"ok":true,"result":{"cancelled":true}}
 */
import {
  EdgeError,
  ErrorCode,
  type ErrorCodeValue,
  describeError,
  isEdgeError,
} from "../../core/errors.js";

export const PROTOCOL_VERSION = 1;

/**
 * Longest accepted line: a request is small (the largest, a config, fits the MQTT limit of
 * 256 KiB); a larger line is a bug or an attack, and closes the connection.
 */
export const MAX_LINE_BYTES = 256 * 1024;
/** Connections at once (issue 14.3): beyond, a new one gets one error line and is closed. */
export const MAX_CONNECTIONS = 16;
/** Requests of one connection in flight (streams included); beyond: CommandBusy. */
export const MAX_REQUESTS_PER_CONNECTION = 16;
/** Stop reading a connection while this much output waits for the client to read it. */
export const MAX_QUEUED_OUTPUT = 1024 * 1024;

export interface ControlRequest {
  id: number;
  method: string;
  params?: Record<string, unknown>;
}

export interface WireError {
  /** Numeric EdgeError code (e.g. 406) — stable across releases. */
  code: number;
  /** Its name (e.g. DeviceUnknown). */
  name: string;
  message: string;
  details?: Record<string, unknown>;
}

export type ControlResponse =
  | { id: number | null; ok: true; result: unknown }
  | { id: number | null; ok: false; error: WireError };

export interface ControlData {
  id: number;
  data: unknown;
}

export type ServerFrame = ControlResponse | ControlData;

export function encodeFrame(frame: ServerFrame | ControlRequest): string {
  return `${JSON.stringify(frame)}\n`;
}

/** Serialise any thrown value for the wire; non-EdgeErrors become CommandFailed with their text. */
export function toWireError(e: unknown): WireError {
  if (isEdgeError(e)) {
    return {
      code: e.code,
      name: e.codeName,
      message: e.text,
      ...(e.details ? { details: { ...e.details } } : {}),
    };
  }
  return { code: ErrorCode.CommandFailed, name: "CommandFailed", message: describeError(e) };
}

/** Rebuild the EdgeError on the client side, so the CLI maps it to the right exit code. */
export function fromWireError(w: WireError): EdgeError {
  return new EdgeError(w.code as ErrorCodeValue, w.message, w.details);
}

/** Validate one parsed request line; throws an EdgeError naming the faulty field. */
export function parseRequest(value: unknown): ControlRequest {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new EdgeError(ErrorCode.UsageError, "request must be a JSON object");
  }
  const r = value as Record<string, unknown>;
  if (typeof r.id !== "number" || !Number.isSafeInteger(r.id)) {
    throw new EdgeError(ErrorCode.UsageError, "request.id: expected an integer");
  }
  if (typeof r.method !== "string" || r.method === "") {
    throw new EdgeError(ErrorCode.UsageError, "request.method: expected a method name");
  }
  if (
    r.params !== undefined &&
    (typeof r.params !== "object" || r.params === null || Array.isArray(r.params))
  ) {
    throw new EdgeError(ErrorCode.UsageError, "request.params: expected an object");
  }
  return { id: r.id, method: r.method, params: r.params as Record<string, unknown> | undefined };
}

/**
 * Splits a byte stream into lines. Keeps at most MAX_LINE_BYTES of an unfinished line; calls
 * `onOverflow` once when a line is longer (the connection is then closed by the caller).
 */
export class LineSplitter {
  private buf = "";
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
    private readonly max = MAX_LINE_BYTES,
  ) {}

  push(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.trim() !== "") this.onLine(line);
    }
    if (this.buf.length > this.max) {
      this.buf = "";
      this.onOverflow();
    }
  }
}

/** Typed param accessors: a wrong type is bad input naming the field. */
export const param = {
  string(p: Record<string, unknown> | undefined, name: string): string {
    const v = p?.[name];
    if (typeof v !== "string" || v === "") {
      throw new EdgeError(ErrorCode.UsageError, `params.${name}: expected a non-empty string`);
    }
    return v;
  },
  optString(p: Record<string, unknown> | undefined, name: string): string | undefined {
    return p?.[name] === undefined ? undefined : param.string(p, name);
  },
  optNumber(p: Record<string, unknown> | undefined, name: string): number | undefined {
    const v = p?.[name];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new EdgeError(ErrorCode.UsageError, `params.${name}: expected a number`);
    }
    return v;
  },
  optBool(p: Record<string, unknown> | undefined, name: string): boolean | undefined {
    const v = p?.[name];
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") {
      throw new EdgeError(ErrorCode.UsageError, `params.${name}: expected true or false`);
    }
    return v;
  },
  optStrings(p: Record<string, unknown> | undefined, name: string): string[] | undefined {
    const v = p?.[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
      throw new EdgeError(ErrorCode.UsageError, `params.${name}: expected an array of strings`);
    }
    return v;
  },
};
