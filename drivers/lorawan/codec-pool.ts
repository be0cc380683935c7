/**
 * The worker threads that run codecs (source in codec-worker.ts). A worker and its QuickJS
 * WebAssembly module cost ~12 MiB; a codec inside one costs a QuickJS runtime and a context per
 * device (well under 2 MiB: bench/lorawan-codecs.ts). So codecs share `size` workers (default 2),
 * each codec on the least loaded one. The agent's event loop never runs codec code.
 *
 * Sharing costs isolation, which is won back this way: a codec that hits its time or memory
 * limit is moved to a worker of its own (up to MAX_ISOLATED workers), so a looping codec delays
 * the codecs it shared a worker with once, by at most its time limit, and from then on only its
 * own devices. A watchdog terminates a worker whose call runs past the limit + GRACE_MS (QuickJS
 * did not interrupt it): that call fails with "timeout", the other calls queued in the worker are
 * sent again to its replacement, which loads the codecs again.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { CODEC_WORKER_SOURCE } from "./codec-worker.js";

export interface CodecLimits {
  timeoutMs: number;
  memoryBytes: number;
}

export type CodecFailure = "timeout" | "memory" | "exception" | "errors" | "invalid" | "crashed";

export interface RawReply {
  ok: boolean;
  value?: unknown;
  error?: string;
  kind?: CodecFailure;
  /** The codec does not load: no point calling it again. */
  broken?: boolean;
}

/** What a worker needs to know of a codec. */
export interface PooledCodec {
  readonly name: string;
  readonly source: string;
}

interface Pending {
  id: number;
  codec: PooledCodec;
  msg: { type: "call"; id: number; codec: string; key: string; op: string; input: unknown };
  resolve: (r: RawReply) => void;
}

const quickjsPath = createRequire(import.meta.url).resolve("quickjs-emscripten");
/** Extra time the watchdog grants beyond the codec's limit (GC pauses, a slow interrupt check). */
const GRACE_MS = 1000;
/** Loading the QuickJS wasm module in a new worker takes ~100-500 ms on a busy box. */
const START_MS = 10_000;
/** Workers of their own for codecs that hit a limit; more such codecs share the last one. */
const MAX_ISOLATED = 4;
/** WebAssembly memory a worker may grow by, per codec it hosts, beyond `memoryBytes`. */
const PER_CODEC_BYTES = 2 * 1024 * 1024;

class PoolWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly codecs = new Set<PooledCodec>();
  private loaded = new Set<string>();
  private beat = new Float64Array(new SharedArrayBuffer(16));
  private watchdog: NodeJS.Timeout | undefined;
  private ready = false;
  private spawnedAt = 0;
  private fatal: string | undefined;
  /** Workers started (1 + restarts). */
  starts = 0;
  closed = false;

  constructor(
    private readonly limits: CodecLimits,
    private readonly onLimit: (codec: PooledCodec) => void,
  ) {}

  get load(): number {
    return this.codecs.size;
  }

  add(c: PooledCodec): void {
    this.codecs.add(c);
  }

  /** `c` moves elsewhere: calls already posted here still run here (never twice). */
  remove(c: PooledCodec): void {
    this.codecs.delete(c);
  }

  submit(p: Pending): void {
    if (this.closed)
      return p.resolve({ ok: false, kind: "crashed", error: "codec sandbox closed" });
    if (this.fatal !== undefined)
      return p.resolve({ ok: false, kind: "crashed", error: this.fatal });
    const w = this.worker ?? this.spawn();
    if (!this.loaded.has(p.codec.name)) {
      this.loaded.add(p.codec.name);
      w.postMessage({
        type: "load",
        codec: p.codec.name,
        source: p.codec.source,
        capBytes: this.limits.memoryBytes + PER_CODEC_BYTES * Math.max(1, this.codecs.size),
      });
    }
    this.pending.set(p.id, p);
    w.postMessage(p.msg);
    this.armWatchdog();
  }

  private spawn(): Worker {
    this.starts++;
    this.ready = false;
    this.loaded = new Set();
    this.beat = new Float64Array(new SharedArrayBuffer(16));
    this.spawnedAt = Date.now();
    const w = new Worker(CODEC_WORKER_SOURCE, {
      eval: true,
      workerData: {
        quickjsPath,
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
        // The QuickJS module itself does not start: nothing this worker hosts can run.
        this.fatal = m.fatal;
        return this.fail(w, undefined, m.fatal);
      }
      if (m.ready) this.ready = true;
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      p.resolve(m);
      if (m.kind === "timeout" || m.kind === "memory") this.onLimit(p.codec);
    });
    w.on("error", (e) => this.fail(w, undefined, `codec worker failed: ${e.message}`));
    w.on("exit", (code) => this.fail(w, undefined, `codec worker exited (code ${code})`));
    this.worker = w;
    return w;
  }

  /**
   * Forget worker `w`: the running call (if known) fails with `kind`, the others are sent again
   * to a fresh worker (they did nothing wrong); everything fails when the pool is closed.
   */
  private fail(
    w: Worker,
    culprit: number | undefined,
    error: string,
    kind: CodecFailure = "crashed",
  ) {
    if (this.worker !== w) return;
    this.worker = undefined;
    void w.terminate();
    this.disarm();
    const all = [...this.pending.values()];
    this.pending.clear();
    // The call running when the worker died is the culprit; one that finished (a "crashed" reply
    // is sent before the worker exits) is not, and the queued ones are sent again.
    const running = culprit ?? (this.beat[0]! > 0 ? this.beat[1] : undefined);
    for (const p of all) {
      if (p.id === running || this.closed || this.fatal !== undefined) {
        p.resolve({ ok: false, kind, error });
        if (p.id === running && kind === "timeout") this.onLimit(p.codec);
      } else this.submit(p);
    }
  }

  private armWatchdog(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => {
      if (this.pending.size === 0 || !this.worker) return this.disarm();
      const now = Date.now();
      const started = this.beat[0]!;
      if (started > 0 && now - started > this.limits.timeoutMs + GRACE_MS) {
        const id = this.beat[1]!;
        const name = this.pending.get(id)?.codec.name ?? "?";
        this.fail(
          this.worker,
          id,
          `codec ${name} ran ${now - started} ms despite its ${this.limits.timeoutMs} ms limit; its worker was restarted`,
          "timeout",
        );
      } else if (!this.ready && now - this.spawnedAt > START_MS) {
        this.fail(this.worker, undefined, `codec sandbox did not start within ${START_MS} ms`);
      }
    }, 50);
    this.watchdog.unref();
  }

  private disarm(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    if (w) this.fail(w, undefined, "codec sandbox closed");
    if (w) await w.terminate();
  }
}

export class CodecPool {
  private readonly shared: PoolWorker[] = [];
  private readonly isolated: PoolWorker[] = [];
  private readonly home = new Map<PooledCodec, PoolWorker>();
  private nextId = 1;

  constructor(
    private readonly limits: CodecLimits,
    private readonly size = 2,
  ) {}

  private worker(): PoolWorker {
    return new PoolWorker(this.limits, (c) => this.isolate(c));
  }

  /** The worker hosting `c` (the least loaded shared one, chosen on first use). */
  private homeOf(c: PooledCodec): PoolWorker {
    let w = this.home.get(c);
    if (!w) {
      if (this.shared.length < this.size) this.shared.push(this.worker());
      w = this.shared.reduce((a, b) => (b.load < a.load ? b : a));
      w.add(c);
      this.home.set(c, w);
    }
    return w;
  }

  /** A codec that hit a limit gets a worker of its own (see the file comment). */
  private isolate(c: PooledCodec): void {
    const from = this.home.get(c);
    if (!from || this.isolated.includes(from)) return;
    let to: PoolWorker;
    if (this.isolated.length < MAX_ISOLATED) {
      to = this.worker();
      this.isolated.push(to);
    } else to = this.isolated[this.isolated.length - 1]!;
    from.remove(c);
    to.add(c);
    this.home.set(c, to);
  }

  /** Run `op` of codec `c` in the context of `key` (a device id). */
  call(c: PooledCodec, key: string, op: "decode" | "encode", input: unknown): Promise<RawReply> {
    const id = this.nextId++;
    return new Promise<RawReply>((resolve) =>
      this.homeOf(c).submit({
        id,
        codec: c,
        msg: { type: "call", id, codec: c.name, key, op, input },
        resolve,
      }),
    );
  }

  /** Worker restarts (status `codec_restarts`). */
  restarts(): number {
    return [...this.shared, ...this.isolated].reduce((n, w) => n + Math.max(0, w.starts - 1), 0);
  }

  /** Workers running or started (for the benchmark and tests). */
  workers(): number {
    return this.shared.length + this.isolated.length;
  }

  isIsolated(c: PooledCodec): boolean {
    const w = this.home.get(c);
    return w !== undefined && this.isolated.includes(w);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shared, ...this.isolated].map((w) => w.close()));
  }
}
