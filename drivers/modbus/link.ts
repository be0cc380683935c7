/**
 * One Modbus connection (a TCP socket, a serial line, or a TCP socket to a serial server) with
 * its own transaction queue: writes go before reads, at most `concurrency` transactions are in
 * flight (always 1 on a serial line, where the bus is half-duplex and the master must leave the
 * silent interval of Modbus over Serial Line V1.02 §2.5.1.1 between frames).
 *
 * The client is modbus-serial. Its ports are single-use: after a TCP close TcpPort removes every
 * listener, so each (re)connection builds a fresh client. While the link is down, requests fail
 * at once with `comm_error` (they never wait on a dead link) and a reconnection is attempted
 * with a growing delay (1 s → 30 s), so polling resumes by itself after any outage.
 */
import modbusSerial from "modbus-serial";
import type { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { classify, ModbusError } from "./errors.js";

export { classify, exceptionDetail, ModbusError } from "./errors.js";

// modbus-serial is CommonJS with `module.exports.default = module.exports`; under NodeNext the
// default import is the `module.exports` object, whose `.default` is the class.
const ModbusRTU = modbusSerial.default;
// The bundled typings omit that the client is an EventEmitter with destroy().
type Client = InstanceType<typeof ModbusRTU> &
  EventEmitter & { destroy?: (cb: () => void) => void };

export type LinkEndpoint =
  | { type: "tcp"; host: string; port: number; concurrency: number }
  | {
      type: "rtu";
      path: string;
      baud: number;
      parity: "none" | "even" | "odd";
      dataBits: 7 | 8;
      stopBits: 1 | 2;
      frameDelayMs: number;
      /** Wait after a broadcast (unit 0) write, which nobody answers; default 100 ms. */
      turnaroundMs?: number;
    }
  | { type: "rtu_over_tcp"; host: string; port: number; frameDelayMs: number };

export type Op =
  | { fc: 1 | 2 | 3 | 4; unit: number; address: number; count: number }
  | { fc: 5; unit: number; address: number; value: boolean }
  | { fc: 6; unit: number; address: number; value: number }
  | { fc: 15; unit: number; address: number; values: boolean[] }
  | { fc: 16; unit: number; address: number; values: number[] };

export type OpResult = { bits?: boolean[]; registers?: number[] };

/** One queued or in-flight transaction. */
class Pending {
  settled = false;
  /** Watchdog sweeps seen while in flight (see ModbusLink.sweep). */
  sweeps = 0;
  constructor(
    readonly op: Op,
    readonly resolve: (r: OpResult) => void,
    readonly reject: (e: ModbusError) => void,
  ) {}
}

/** Period of the in-flight watchdog sweep; one timer per open link, not one per transaction. */
const SWEEP_MS = 500;

export function describeEndpoint(ep: LinkEndpoint): string {
  return ep.type === "rtu"
    ? `${ep.path} (${ep.baud} baud)`
    : `${ep.type === "tcp" ? "" : "rtu-over-tcp "}${ep.host}:${ep.port}`;
}

export class ModbusLink {
  private client: Client | undefined;
  private state: "closed" | "opening" | "open" = "closed";
  private readonly high: Pending[] = [];
  private readonly low: Pending[] = [];
  private inflight = 0;
  private readonly active = new Set<Pending>();
  private sweeper: NodeJS.Timeout | undefined;
  private nextOpenAt = 0;
  private openDelay = 1000;
  private lastError = "";
  private pauseUntil = 0;
  private pauseTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly counters = {
    requests: 0,
    timeouts: 0,
    exceptions: 0,
    frame_errors: 0,
    comm_errors: 0,
    connects: 0,
  };

  constructor(
    readonly endpoint: LinkEndpoint,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  get name(): string {
    return describeEndpoint(this.endpoint);
  }

  get detail(): string {
    if (this.state === "open") return `connected to ${this.name}`;
    return `${this.name} not connected${this.lastError ? `: ${this.lastError}` : ""}`;
  }

  private get concurrency(): number {
    return this.endpoint.type === "tcp" ? this.endpoint.concurrency : 1;
  }

  /** Queue a transaction; `priority` "high" (writes, on-demand reads) goes before polls. */
  request(op: Op, priority: "high" | "low" = "low"): Promise<OpResult> {
    if (this.stopped) return Promise.reject(new ModbusError("comm_error", "driver stopped"));
    return new Promise((resolve, reject) => {
      (priority === "high" ? this.high : this.low).push(new Pending(op, resolve, reject));
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pauseTimer);
    this.failQueued(new ModbusError("comm_error", "driver stopped"));
    this.failActive("driver stopped");
    await this.dropClient();
  }

  private failQueued(err: ModbusError): void {
    for (const q of [this.high, this.low]) for (const p of q.splice(0)) p.reject(err);
  }

  private pump(): void {
    if (this.stopped) return;
    if (this.state !== "open") {
      if (this.state === "closed") {
        if (Date.now() >= this.nextOpenAt) void this.open();
        else
          this.failQueued(
            new ModbusError(
              "comm_error",
              `${this.detail}; retrying in ${Math.ceil((this.nextOpenAt - Date.now()) / 1000)} s`,
            ),
          );
      }
      return;
    }
    const wait = this.pauseUntil > 0 ? this.pauseUntil - Date.now() : 0;
    if (wait > 0) {
      // Serial line: keep the silent interval before the next frame.
      this.pauseTimer ??= setTimeout(() => {
        this.pauseTimer = undefined;
        this.pump();
      }, wait);
      return;
    }
    while (this.inflight < this.concurrency) {
      const next = this.high.shift() ?? this.low.shift();
      if (!next) return;
      this.inflight++;
      this.counters.requests++;
      this.start(next);
    }
  }

  /**
   * Run one transaction and settle it exactly once. modbus-serial can fail to call back at all:
   * `destroy()` cancels the timers of pending transactions without calling them, and a write on
   * a socket that is closing is dropped silently. A transaction left pending would hold its
   * queue slot for ever — the "polling freezes after an outage" failure — so the link fails
   * in-flight transactions itself when the connection is dropped, with a watchdog as last resort
   * (a periodic sweep: a timer armed and cleared per transaction cost more than the sweep).
   */
  private start(p: Pending): void {
    const ep = this.endpoint;
    if (ep.type === "rtu" && p.op.unit === 0 && p.op.fc >= 5) {
      // Broadcast (Modbus over Serial Line §2.1): executed by every unit, answered by none. Send
      // it, ignore modbus-serial's eventual timeout, and give the units the turnaround delay.
      this.run(p, () => {});
      setTimeout(() => this.done(p, {}, undefined), ep.turnaroundMs ?? 100);
      return;
    }
    this.active.add(p);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    this.run(p, (r, err) => this.finish(p, r, err));
  }

  private finish(p: Pending, r: OpResult | undefined, err: ModbusError | undefined): void {
    if (p.settled) return;
    p.settled = true;
    this.active.delete(p);
    this.done(p, r, err);
  }

  /**
   * Fail what has been in flight longer than timeoutMs + 1 s (modbus-serial never answered).
   * Stops itself when nothing is in flight, so an idle link does not wake the process.
   */
  private sweep(): void {
    if (this.active.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const limit = Math.ceil((this.timeoutMs + 1000) / SWEEP_MS);
    for (const p of [...this.active])
      if (++p.sweeps > limit)
        this.finish(p, undefined, new ModbusError("timeout", "no answer before the timeout"));
  }

  private failActive(why: string): void {
    for (const p of [...this.active]) this.finish(p, undefined, new ModbusError("comm_error", why));
  }

  private done(p: Pending, r: OpResult | undefined, err: ModbusError | undefined): void {
    this.inflight--;
    const ep = this.endpoint;
    if (ep.type !== "tcp" && ep.frameDelayMs > 0) this.pauseUntil = Date.now() + ep.frameDelayMs;
    if (err) {
      const key =
        `${err.quality === "exception" ? "exceptions" : err.quality === "frame_error" ? "frame_errors" : err.quality === "timeout" ? "timeouts" : "comm_errors"}` as const;
      this.counters[key]++;
      if (err.quality === "comm_error" && !this.client?.isOpen) void this.lost(err.message);
      p.reject(err);
    } else p.resolve(r!);
    this.pump();
  }

  private async lost(why: string): Promise<void> {
    if (this.state === "closed") return;
    this.log.warn({ endpoint: this.name, why }, "modbus link lost");
    this.lastError = why;
    this.state = "closed";
    this.nextOpenAt = 0; // first reconnection at once; failures then back off
    this.failActive(`connection lost: ${why}`);
    await this.dropClient();
  }

  private async dropClient(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    c.removeAllListeners();
    c.on("error", () => {}); // late socket errors of a dropped client are expected
    await new Promise<void>((resolve) => {
      try {
        // ModbusRTU.destroy() only destroys ports that have destroy(): RTUBufferedPort has none,
        // so destroy() would leave the serial line open (and keep reading the bus). Close it.
        if (this.endpoint.type === "rtu" || typeof c.destroy !== "function")
          c.close(() => resolve());
        else c.destroy(() => resolve());
      } catch {
        resolve();
      }
      setTimeout(resolve, 500).unref();
    });
  }

  private async open(): Promise<void> {
    this.state = "opening";
    const c = new ModbusRTU() as Client;
    const ep = this.endpoint;
    // A TCP connect to a host that is down can hang for minutes (SYN retries): bound it, so
    // queued polls fail and are retried on schedule instead of waiting behind it.
    let connectTimer: NodeJS.Timeout | undefined;
    const connectLimit = Math.max(this.timeoutMs, 3000);
    try {
      const connecting =
        ep.type === "tcp"
          ? c.connectTCP(ep.host, { port: ep.port })
          : ep.type === "rtu_over_tcp"
            ? c.connectTelnet(ep.host, { port: ep.port })
            : c.connectRTUBuffered(ep.path, {
                baudRate: ep.baud,
                parity: ep.parity,
                dataBits: ep.dataBits,
                stopBits: ep.stopBits,
              });
      await Promise.race([
        connecting,
        new Promise((_, reject) => {
          connectTimer = setTimeout(() => {
            c.destroy?.(() => {});
            reject(new Error(`no connection after ${connectLimit} ms`));
          }, connectLimit);
        }),
      ]);
      clearTimeout(connectTimer);
    } catch (e) {
      clearTimeout(connectTimer);
      this.lastError = (e as Error).message || String(e);
      this.state = "closed";
      this.nextOpenAt = Date.now() + this.openDelay;
      this.log.warn(
        { endpoint: this.name, err: this.lastError, retryMs: this.openDelay },
        "modbus connection failed",
      );
      this.openDelay = Math.min(this.openDelay * 2, 30_000);
      c.removeAllListeners();
      this.failQueued(
        new ModbusError("comm_error", `cannot connect to ${this.name}: ${this.lastError}`),
      );
      return;
    }
    if (this.stopped) {
      this.client = c;
      await this.dropClient();
      return;
    }
    c.setTimeout(this.timeoutMs);
    c.on("close", () => {
      if (this.client === c) void this.lost("connection closed");
    });
    c.on("error", (e: Error) => {
      if (this.client === c) void this.lost(e.message);
    });
    this.client = c;
    this.state = "open";
    this.openDelay = 1000;
    this.lastError = "";
    this.counters.connects++;
    this.log.info({ endpoint: this.name }, "modbus link connected");
    this.pump();
  }

  /**
   * Send one transaction; `settle` is called at most once by modbus-serial (or never: see start).
   * A callback, not a Promise: this runs for every request of every poll.
   */
  private run(
    p: Pending,
    settle: (r: OpResult | undefined, err: ModbusError | undefined) => void,
  ): void {
    // Failures settle on a later microtask: modbus-serial reports some (port not open) from
    // inside the write call, and settling there would start the next queued request from
    // within this one, recursively, for the whole queue.
    const fail = (e: unknown) => queueMicrotask(() => settle(undefined, classify(e)));
    const c = this.client;
    if (!c) return fail(new ModbusError("comm_error", "not connected"));
    if (this.endpoint.type !== "tcp") {
      // modbus-serial's RTU ports (RTUBufferedPort, TelnetPort) keep unread bytes between
      // transactions, so a late answer to a timed-out request could be taken for the answer to
      // the next one. Nothing legitimate is pending when a new request starts: drop them.
      const port = (c as unknown as { _port?: { _buffer?: Buffer } })._port;
      if (port && port._buffer) port._buffer = Buffer.alloc(0);
    }
    const op = p.op;
    // One callback for every function code; the result shape is checked per code below.
    const cb = (err: Error | null, data: unknown) => {
      if (err) return fail(err);
      const d = data as { data?: (number | boolean)[] };
      if (op.fc === 1 || op.fc === 2)
        settle({ bits: (d.data as boolean[]).slice(0, op.count) }, undefined);
      else if (op.fc === 3 || op.fc === 4) settle({ registers: d.data as number[] }, undefined);
      else settle({}, undefined);
    };
    try {
      switch (op.fc) {
        case 1:
          return c.writeFC1(op.unit, op.address, op.count, cb);
        case 2:
          return c.writeFC2(op.unit, op.address, op.count, cb);
        case 3:
          return c.writeFC3(op.unit, op.address, op.count, cb);
        case 4:
          return c.writeFC4(op.unit, op.address, op.count, cb);
        case 5:
          return c.writeFC5(op.unit, op.address, op.value, cb);
        case 6:
          return c.writeFC6(op.unit, op.address, op.value, cb);
        case 15:
          return c.writeFC15(op.unit, op.address, op.values, cb);
        case 16:
          return c.writeFC16(op.unit, op.address, op.values, cb);
      }
    } catch (e) {
      fail(e); // a synchronous throw is a failed transaction, as it was with a Promise
    }
  }
}
