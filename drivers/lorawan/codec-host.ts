/**
 * Runs a TTN/ChirpStack-compatible JavaScript codec in a QuickJS sandbox inside its own worker
 * thread (source in codec-worker.ts). The agent's event loop never runs codec code: a codec that
 * loops or allocates without end costs its own worker at most its time limit, and devices using
 * other codecs keep being decoded meanwhile. A watchdog terminates a worker that stops answering
 * (time limit + grace) and the next call starts a fresh one.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { CODEC_WORKER_SOURCE } from "./codec-worker.js";

export interface CodecLimits {
  timeoutMs: number;
  memoryBytes: number;
}

export type CodecFailure = "timeout" | "memory" | "exception" | "errors" | "invalid" | "crashed";

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

interface Pending {
  id: number;
  op: "decode" | "encode";
  sentAt: number;
  resolve: (r: RawReply) => void;
}

interface RawReply {
  ok: boolean;
  value?: unknown;
  error?: string;
  kind?: CodecFailure;
}

const quickjsPath = createRequire(import.meta.url).resolve("quickjs-emscripten");
/** Extra time the watchdog grants beyond the codec's limit (GC pauses, a slow interrupt check). */
const GRACE_MS = 1000;
/** Loading the QuickJS wasm module in a new worker takes ~100-500 ms on a busy box. */
const START_MS = 10_000;

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map((x) => String(x)) : []);

export class CodecSandbox {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Start time (ms) of the call running in the worker, 0 when idle (written by the worker). */
  private beat = new Float64Array(new SharedArrayBuffer(8));
  private watchdog: NodeJS.Timeout | undefined;
  private closed = false;
  private ready = false;
  private spawnedAt = 0;
  /** Set when the codec source does not load: no point restarting a worker for every uplink. */
  private broken: string | undefined;
  /** Workers started (1 + restarts), for status and tests. */
  starts = 0;

  constructor(
    readonly name: string,
    private readonly source: string,
    private readonly limits: CodecLimits,
  ) {}

  /** TTN `decodeUplink({bytes, fPort, recvTime})` → `{data, warnings, errors}`. */
  async decode(input: UplinkInput): Promise<CodecOutcome<Record<string, unknown>>> {
    const r = await this.call("decode", {
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
  async encode(data: Record<string, unknown>): Promise<CodecOutcome<Downlink>> {
    const r = await this.call("encode", { data });
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

  private call(op: "decode" | "encode", input: unknown): Promise<RawReply> {
    if (this.closed)
      return Promise.resolve({ ok: false, kind: "crashed", error: "codec sandbox closed" });
    if (this.broken !== undefined)
      return Promise.resolve({ ok: false, kind: "crashed", error: this.broken });
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise<RawReply>((resolve) => {
      this.pending.set(id, { id, op, sentAt: Date.now(), resolve });
      worker.postMessage({ id, op, input });
      this.armWatchdog();
    });
  }

  private spawn(): Worker {
    this.starts++;
    this.ready = false;
    this.beat = new Float64Array(new SharedArrayBuffer(8));
    this.spawnedAt = Date.now();
    const w = new Worker(CODEC_WORKER_SOURCE, {
      eval: true,
      workerData: {
        quickjsPath,
        source: this.source,
        name: this.name,
        timeoutMs: this.limits.timeoutMs,
        memoryBytes: this.limits.memoryBytes,
        heartbeat: this.beat.buffer,
      },
      // Bounds the worker's own V8 heap (the QuickJS heap lives in wasm memory, capped inside).
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
      stdout: true,
      stderr: true,
    });
    w.unref();
    w.on("message", (m: RawReply & { id?: number; ready?: boolean; fatal?: string }) => {
      if (m.fatal !== undefined) {
        this.broken = m.fatal;
        return this.fail(w, "crashed", m.fatal);
      }
      if (m.ready) this.ready = true;
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      p.resolve(m);
    });
    w.on("error", (e) => this.fail(w, "crashed", `codec worker failed: ${e.message}`));
    w.on("exit", (code) => this.fail(w, "crashed", `codec worker exited (code ${code})`));
    this.worker = w;
    return w;
  }

  /** Resolve every pending call of worker `w` with an error and forget the worker. */
  private fail(w: Worker, kind: CodecFailure, error: string): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    void w.terminate();
    for (const p of this.pending.values()) p.resolve({ ok: false, kind, error });
    this.pending.clear();
    this.disarm();
  }

  private armWatchdog(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => {
      if (this.pending.size === 0 || !this.worker) return this.disarm();
      const now = Date.now();
      const started = this.beat[0]!;
      if (started > 0 && now - started > this.limits.timeoutMs + GRACE_MS) {
        this.fail(
          this.worker,
          "timeout",
          `codec ${this.name} ran ${now - started} ms despite its ${this.limits.timeoutMs} ms limit; its worker was restarted`,
        );
      } else if (!this.ready && now - this.spawnedAt > START_MS) {
        this.fail(
          this.worker,
          "crashed",
          `codec ${this.name}: sandbox did not start within ${START_MS} ms`,
        );
      }
    }, 50);
    this.watchdog.unref();
  }

  private disarm(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  /** Start the worker and load the codec; resolves to the load error, if any. */
  async check(): Promise<string | undefined> {
    const r = await this.call("decode", {
      bytes: [],
      fPort: 1,
      recvTime: new Date(0).toISOString(),
    });
    return this.broken ?? (r.ok || r.kind !== "crashed" ? undefined : r.error);
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    if (w) this.fail(w, "crashed", "codec sandbox closed");
    if (w) await w.terminate();
  }
}
