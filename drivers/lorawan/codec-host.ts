/**
 * One codec as the driver sees it: TTN v3 / ChirpStack v4 `decodeUplink` / `encodeDownlink` with
 * their results checked, run in the shared codec workers (codec-pool.ts) in a QuickJS context of
 * the calling device (codec globals persist across one device's calls, never across devices).
 * A standalone sandbox (tests) gets a pool of its own.
 */
import { CodecPool, type CodecFailure, type CodecLimits, type RawReply } from "./codec-pool.js";

export type { CodecFailure, CodecLimits } from "./codec-pool.js";

export type CodecOutcome<T> =
  | { ok: true; value: T; warnings: string[] }
  | { ok: false; kind: CodecFailure; error: string; warnings: string[] };

export interface UplinkInput {
  bytes: Uint8Array;
  fPort: number;
  recvTime: Date;
}

export interface Downlink {
  fPort: number;
  bytes: Buffer;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map((x) => String(x)) : []);

/** Context key of calls that name no device (checks, tests). */
const DEFAULT_KEY = "";

export class CodecSandbox {
  private readonly pool: CodecPool;
  private readonly ownPool: boolean;
  /** Set when the codec source does not load: no point sending it every uplink. */
  private broken: string | undefined;
  private closed = false;

  constructor(
    readonly name: string,
    readonly source: string,
    limits: CodecLimits,
    pool?: CodecPool,
  ) {
    this.ownPool = pool === undefined;
    this.pool = pool ?? new CodecPool(limits, 1);
  }

  /** TTN `decodeUplink({bytes, fPort, recvTime})` → `{data, warnings, errors}`. */
  async decode(
    input: UplinkInput,
    device = DEFAULT_KEY,
  ): Promise<CodecOutcome<Record<string, unknown>>> {
    const r = await this.call(device, "decode", {
      bytes: Array.from(input.bytes),
      fPort: input.fPort,
      recvTime: input.recvTime.toISOString(),
    });
    if (!r.ok)
      return {
        ok: false,
        kind: r.kind ?? "crashed",
        error: r.error ?? "codec failed",
        warnings: [],
      };
    const out = r.value as { data?: unknown; warnings?: unknown; errors?: unknown } | null;
    const warnings = strings(out?.warnings);
    const errors = strings(out?.errors);
    if (errors.length > 0) return { ok: false, kind: "errors", error: errors.join("; "), warnings };
    if (!out || out.data === null || typeof out.data !== "object" || Array.isArray(out.data))
      return {
        ok: false,
        kind: "invalid",
        error: "decodeUplink returned no `data` object",
        warnings,
      };
    return { ok: true, value: out.data as Record<string, unknown>, warnings };
  }

  /** TTN `encodeDownlink({data})` → `{bytes, fPort, warnings, errors}`. */
  async encode(
    data: Record<string, unknown>,
    device = DEFAULT_KEY,
  ): Promise<CodecOutcome<Downlink>> {
    const r = await this.call(device, "encode", { data });
    if (!r.ok)
      return {
        ok: false,
        kind: r.kind ?? "crashed",
        error: r.error ?? "codec failed",
        warnings: [],
      };
    const out = r.value as {
      bytes?: unknown;
      fPort?: unknown;
      warnings?: unknown;
      errors?: unknown;
    } | null;
    const warnings = strings(out?.warnings);
    const errors = strings(out?.errors);
    if (errors.length > 0) return { ok: false, kind: "errors", error: errors.join("; "), warnings };
    const bytes = out?.bytes;
    const fPort = out?.fPort;
    if (
      !Array.isArray(bytes) ||
      !bytes.every((b) => Number.isInteger(b) && (b as number) >= 0 && (b as number) <= 255)
    ) {
      return {
        ok: false,
        kind: "invalid",
        error: "encodeDownlink returned no `bytes` array of 0..255",
        warnings,
      };
    }
    if (typeof fPort !== "number" || !Number.isInteger(fPort) || fPort < 1 || fPort > 223) {
      return {
        ok: false,
        kind: "invalid",
        error: "encodeDownlink returned no `fPort` in 1..223",
        warnings,
      };
    }
    return { ok: true, value: { fPort, bytes: Buffer.from(bytes as number[]) }, warnings };
  }

  private async call(key: string, op: "decode" | "encode", input: unknown): Promise<RawReply> {
    if (this.closed) return { ok: false, kind: "crashed", error: "codec sandbox closed" };
    if (this.broken !== undefined) return { ok: false, kind: "crashed", error: this.broken };
    const r = await this.pool.call(this, key, op, input);
    if (r.broken) this.broken = r.error;
    return r;
  }

  /** Load the codec (in the context of `device`); resolves to the load error, if any. */
  async check(device = DEFAULT_KEY): Promise<string | undefined> {
    const r = await this.call(device, "decode", {
      bytes: [],
      fPort: 1,
      recvTime: new Date(0).toISOString(),
    });
    return this.broken ?? (r.ok || r.kind !== "crashed" ? undefined : r.error);
  }

  /** True once the codec hit a limit and runs in a worker of its own (codec-pool.ts). */
  isolated(): boolean {
    return this.pool.isIsolated(this);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ownPool) await this.pool.close();
  }
}
