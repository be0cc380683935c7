/**
 * One Modbus connection (a TCP socket, a serial line, or a TCP socket to a serial server) with
 * its own transaction queue: writes go before reads, at most `concurrency` transactions are in
 * flight (always 1 on a serial line, where the bus is half-duplex and the master must leave the
 * silent interval of Modbus over Serial Line V1.02 §2.5.1.1 between frames).
 *
 * The link frames and checks every answer itself (frame.ts) on a plain socket or serial port.
 * It used modbus-serial before, which trusts what it receives and can wedge a connection for
 * good (issue 16): its TcpPort waits for ever for the bytes an MBAP length promised, and its
 * TelnetPort resets its expectations *after* emitting an answer, so a transaction started from
 * that callback lost its own answer. Here the receive buffer is consumed before an answer is
 * settled, so the next transaction may start from the settle callback.
 *
 * No connection stays wedged: on TCP (and RTU over TCP) a framing error (bad protocol id or
 * length, an incomplete frame at the timeout, stray bytes between answers) drops the
 * connection and reconnects at once, and so do `reconnectAfterTimeouts` timeouts in a row (a
 * session that stopped answering while the server still accepts new ones). A failed connection
 * is retried with a growing delay (1 s → 30 s); meanwhile requests fail at once with
 * `comm_error`, so polling resumes by itself after any outage.
 */
import { createConnection, type Socket } from "node:net";
import type { Logger } from "pino";
import { SerialPort } from "serialport";
import { ModbusError } from "./errors.js";
import {
  answerPduLength,
  checkAnswer,
  crc16,
  MBAP,
  type Op,
  type OpResult,
  rtuRequest,
  tcpRequest,
} from "./frame.js";

export { classify, exceptionDetail, ModbusError } from "./errors.js";
export type { Op, OpResult } from "./frame.js";

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

export interface LinkOptions {
  /** Reconnect after this many timeouts in a row on a TCP connection; 0: never. Default 3. */
  reconnectAfterTimeouts?: number;
}

/** One queued or in-flight transaction. */
class Pending {
  settled = false;
  timer: NodeJS.Timeout | undefined;
  tid = 0;
  /** Answers discarded while this was in flight (other transaction id, CRC error, …). */
  discarded = 0;
  constructor(
    readonly op: Op,
    readonly timeoutMs: number,
    readonly resolve: (r: OpResult) => void,
    readonly reject: (e: ModbusError) => void,
  ) {}
}

const EMPTY = Buffer.alloc(0);
/** Bytes kept while hunting for an RTU frame in noise (an answer is at most 256 bytes). */
const RTU_KEEP = 512;

export function describeEndpoint(ep: LinkEndpoint): string {
  return ep.type === "rtu"
    ? `${ep.path} (${ep.baud} baud)`
    : `${ep.type === "tcp" ? "" : "rtu-over-tcp "}${ep.host}:${ep.port}`;
}

type Wire = Socket | SerialPort;

export class ModbusLink {
  private wire: Wire | undefined;
  private state: "closed" | "opening" | "open" = "closed";
  private readonly high: Pending[] = [];
  private readonly low: Pending[] = [];
  private inflight = 0;
  /** In-flight transactions: by transaction id on TCP, the one current on RTU. */
  private readonly byTid = new Map<number, Pending>();
  private current: Pending | undefined;
  private rx: Buffer = EMPTY;
  private nextTid = 0;
  private timeoutsInARow = 0;
  private nextOpenAt = 0;
  private openDelay = 1000;
  private lastError = "";
  private pauseUntil = 0;
  private pauseTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly mbap: boolean;
  private readonly reconnectAfter: number;
  readonly counters = {
    requests: 0,
    timeouts: 0,
    exceptions: 0,
    frame_errors: 0,
    comm_errors: 0,
    connects: 0,
    reconnects: 0,
    discarded_answers: 0,
  };

  constructor(
    readonly endpoint: LinkEndpoint,
    private readonly timeoutMs: number,
    private readonly log: Logger,
    opts: LinkOptions = {},
  ) {
    this.mbap = endpoint.type === "tcp";
    this.reconnectAfter = endpoint.type === "rtu" ? 0 : (opts.reconnectAfterTimeouts ?? 3);
  }

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

  /**
   * Queue a transaction; `priority` "high" (writes, on-demand reads) goes before polls.
   * `timeoutMs` overrides the link's answer timeout for this one (the scan's probes).
   */
  request(op: Op, priority: "high" | "low" = "low", timeoutMs = this.timeoutMs): Promise<OpResult> {
    if (this.stopped) return Promise.reject(new ModbusError("comm_error", "driver stopped"));
    return new Promise((resolve, reject) => {
      (priority === "high" ? this.high : this.low).push(
        new Pending(op, timeoutMs, resolve, reject),
      );
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pauseTimer);
    this.failQueued(new ModbusError("comm_error", "driver stopped"));
    this.failActive(new ModbusError("comm_error", "driver stopped"));
    await this.dropWire();
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
    if (this.mbap && this.inflight === 0 && this.rx.length > 0 && this.queued()) {
      // Bytes left over with nothing in flight (trailing bytes after an answer, the start of a
      // late one): the next answer would be read behind them. Start on a fresh connection.
      void this.lost(`${this.rx.length} stray bytes between answers`, "frame_error");
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

  private queued(): boolean {
    return this.high.length > 0 || this.low.length > 0;
  }

  /** Send one transaction; it is settled exactly once: by its answer, its timer, or a loss. */
  private start(p: Pending): void {
    const ep = this.endpoint;
    const wire = this.wire!;
    if (this.mbap) {
      this.nextTid = (this.nextTid + 1) & 0xffff;
      p.tid = this.nextTid;
      this.byTid.set(p.tid, p);
      wire.write(tcpRequest(p.tid, p.op));
    } else {
      // Nothing legitimate is pending when a request starts: bytes still buffered are a late
      // answer to a timed-out request or noise, and must not be taken for this answer.
      if (this.rx.length > 0) this.counters.discarded_answers++;
      this.rx = EMPTY;
      const frame = rtuRequest(p.op);
      if (ep.type === "rtu" && p.op.unit === 0) {
        // Broadcast (Modbus over Serial Line §2.1): executed by every unit, answered by none.
        wire.write(frame);
        this.current = p;
        p.timer = setTimeout(() => this.finish(p, {}, undefined), ep.turnaroundMs ?? 100);
        return;
      }
      this.current = p;
      wire.write(frame);
    }
    p.timer = setTimeout(() => this.onTimeout(p), p.timeoutMs);
  }

  private finish(p: Pending, r: OpResult | undefined, err: ModbusError | undefined): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    if (this.mbap) this.byTid.delete(p.tid);
    else if (this.current === p) this.current = undefined;
    this.inflight--;
    const ep = this.endpoint;
    if (ep.type !== "tcp" && ep.frameDelayMs > 0) this.pauseUntil = Date.now() + ep.frameDelayMs;
    if (err) {
      const q = err.quality;
      this.counters[
        q === "exception"
          ? "exceptions"
          : q === "frame_error"
            ? "frame_errors"
            : q === "timeout"
              ? "timeouts"
              : "comm_errors"
      ]++;
      if (q !== "timeout" && q !== "comm_error") this.timeoutsInARow = 0;
      p.reject(err);
    } else {
      this.timeoutsInARow = 0;
      p.resolve(r!);
    }
    this.pump();
  }

  private active(): Pending[] {
    return this.mbap ? [...this.byTid.values()] : this.current ? [this.current] : [];
  }

  private failActive(err: ModbusError): void {
    for (const p of this.active()) this.finish(p, undefined, err);
  }

  private onTimeout(p: Pending): void {
    if (p.settled) return;
    if (this.rx.length > 0 && this.mbap) {
      // Part of a frame, and the rest never came (truncated, a length larger than the data,
      // a trickle slower than the timeout): the stream cannot be trusted any more.
      void this.lost(`incomplete answer (${this.rx.length} bytes) at the timeout`, "frame_error");
      return;
    }
    let err: ModbusError;
    if (!this.mbap && this.rx.length > 0)
      err = new ModbusError(
        "frame_error",
        p.discarded > 0
          ? "CRC error in the answer"
          : (foreignAnswer(this.rx, p.op) ??
              `garbled answer: ${this.rx.length} bytes without a valid frame`),
      );
    else if (p.discarded > 0)
      err = new ModbusError(
        "frame_error",
        `no valid answer before the timeout (${p.discarded} answer(s) refused: ${this.lastDiscard})`,
      );
    else err = new ModbusError("timeout", "no answer before the timeout");
    this.rx = this.mbap ? this.rx : EMPTY;
    this.timeoutsInARow++;
    const wedged = this.reconnectAfter > 0 && this.timeoutsInARow >= this.reconnectAfter;
    this.finish(p, undefined, err);
    if (wedged && this.state === "open") {
      this.timeoutsInARow = 0;
      void this.lost(`${this.reconnectAfter} timeouts in a row`, "timeout");
    }
  }

  private lastDiscard = "";

  private discard(why: string): void {
    this.counters.discarded_answers++;
    this.lastDiscard = why;
    for (const p of this.active()) p.discarded++;
  }

  private onData(chunk: Buffer): void {
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    if (this.mbap) this.parseMbap();
    else this.parseRtu();
  }

  /** Consume complete MBAP frames (Modbus Messaging on TCP/IP §3.1.3). */
  private parseMbap(): void {
    while (this.rx.length >= MBAP + 1) {
      const buf = this.rx;
      const pid = buf.readUInt16BE(2);
      const len = buf.readUInt16BE(4);
      if (pid !== 0)
        return void this.lost(`answer with MBAP protocol id ${pid}, expected 0`, "frame_error");
      if (len < 2 || len > 254)
        return void this.lost(`answer with MBAP length ${len}, outside 2..254`, "frame_error");
      const end = 6 + len;
      if (buf.length < end) return; // the rest may still come; the timeout judges
      // Consume before settling: the settle callback may start the next transaction.
      this.rx = buf.length === end ? EMPTY : buf.subarray(end);
      const tid = buf.readUInt16BE(0);
      const p = this.byTid.get(tid);
      if (!p) {
        // A late answer to a request that timed out, or a bogus id: not ours to use.
        this.discard(`transaction id ${tid} matches no request in flight`);
        continue;
      }
      const unit = buf[6]!;
      if (unit !== p.op.unit) {
        this.finish(
          p,
          undefined,
          new ModbusError(
            "frame_error",
            `answer from unit ${unit} to a request to unit ${p.op.unit}`,
          ),
        );
        continue;
      }
      this.settleChecked(p, buf, MBAP, end);
    }
  }

  /**
   * Find the answer to the current request in the bytes received (Modbus over Serial Line
   * §2.5.1): unit id, function code, length from the function code and byte count, valid CRC.
   * Bytes before it are noise and skipped, so a valid frame after noise is still found.
   */
  private parseRtu(): void {
    const p = this.current;
    if (!p) {
      if (this.rx.length > RTU_KEEP) this.rx = this.rx.subarray(this.rx.length - RTU_KEEP);
      return; // nothing asked: late bytes, dropped when the next request starts
    }
    const buf = this.rx;
    const unit = p.op.unit;
    for (let i = 0; i + 1 < buf.length; i++) {
      if (buf[i] !== unit) continue;
      const n = answerPduLength(p.op.fc, buf, i + 1, buf.length);
      if (n < 0) continue;
      if (n === 0 || i + 3 + n > buf.length) return; // may be the start of the answer: wait
      const end = i + 1 + n;
      if (crc16(buf, i, end) !== buf.readUInt16LE(end)) {
        this.discard("CRC error");
        continue;
      }
      this.rx = EMPTY; // anything after the answer is noise too
      this.settleChecked(p, buf, i + 1, end);
      return;
    }
    if (buf.length > RTU_KEEP) this.rx = buf.subarray(buf.length - RTU_KEEP);
  }

  private settleChecked(p: Pending, buf: Buffer, at: number, end: number): void {
    let res: OpResult | undefined;
    let err: ModbusError | undefined;
    try {
      res = checkAnswer(p.op, buf, at, end);
    } catch (e) {
      err = e instanceof ModbusError ? e : new ModbusError("frame_error", String(e));
    }
    this.finish(p, res, err);
  }

  /** Drop the connection, fail what is in flight, reconnect at once (queued requests wait). */
  private async lost(
    why: string,
    quality: "comm_error" | "frame_error" | "timeout" = "comm_error",
  ) {
    if (this.state === "closed") return;
    this.log.warn({ endpoint: this.name, why }, "modbus link lost");
    this.lastError = why;
    this.state = "closed";
    this.nextOpenAt = 0; // first reconnection at once; failures then back off
    if (quality !== "comm_error") this.counters.reconnects++;
    const wire = this.wire;
    this.wire = undefined;
    this.rx = EMPTY;
    this.failActive(
      new ModbusError(quality === "timeout" ? "comm_error" : quality, `connection lost: ${why}`),
    );
    await closeWire(wire);
    this.pump();
  }

  private async dropWire(): Promise<void> {
    const w = this.wire;
    this.wire = undefined;
    this.rx = EMPTY;
    await closeWire(w);
  }

  private async open(): Promise<void> {
    this.state = "opening";
    const ep = this.endpoint;
    // A TCP connect to a host that is down can hang for minutes (SYN retries): bound it, so
    // queued polls fail and are retried on schedule instead of waiting behind it.
    const connectLimit = Math.max(this.timeoutMs, 3000);
    let wire: Wire | undefined;
    try {
      wire = await openWire(ep, connectLimit);
    } catch (e) {
      this.lastError = (e as Error).message || String(e);
      this.state = "closed";
      this.nextOpenAt = Date.now() + this.openDelay;
      this.log.warn(
        { endpoint: this.name, err: this.lastError, retryMs: this.openDelay },
        "modbus connection failed",
      );
      this.openDelay = Math.min(this.openDelay * 2, 30_000);
      this.failQueued(
        new ModbusError("comm_error", `cannot connect to ${this.name}: ${this.lastError}`),
      );
      return;
    }
    if (this.stopped) return void (await closeWire(wire));
    const w = wire;
    w.on("data", (d: Buffer) => {
      if (this.wire === w) this.onData(d);
    });
    w.on("close", () => {
      if (this.wire === w) void this.lost("connection closed");
    });
    w.on("error", (e: Error) => {
      if (this.wire === w) void this.lost(e.message);
    });
    this.wire = w;
    this.rx = EMPTY;
    this.state = "open";
    this.openDelay = 1000;
    this.lastError = "";
    this.counters.connects++;
    this.log.info({ endpoint: this.name }, "modbus link connected");
    this.pump();
  }
}

/** "answer from unit N …" when buf holds a whole valid RTU answer from another unit. */
function foreignAnswer(buf: Buffer, op: Op): string | undefined {
  const n = answerPduLength(op.fc, buf, 1, buf.length);
  if (n <= 0 || buf.length < n + 3 || crc16(buf, 0, n + 1) !== buf.readUInt16LE(n + 1)) return;
  return `answer from unit ${buf[0]} to a request to unit ${op.unit}`;
}

function openWire(ep: LinkEndpoint, limitMs: number): Promise<Wire> {
  return new Promise((resolve, reject) => {
    if (ep.type === "rtu") {
      const sp = new SerialPort({
        path: ep.path,
        baudRate: ep.baud,
        parity: ep.parity,
        dataBits: ep.dataBits,
        stopBits: ep.stopBits,
        autoOpen: false,
      });
      sp.open((e) => (e ? reject(e) : resolve(sp)));
      return;
    }
    const s = createConnection({ host: ep.host, port: ep.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no connection after ${limitMs} ms`));
    }, limitMs);
    s.once("connect", () => {
      clearTimeout(timer);
      s.removeAllListeners("error");
      s.setNoDelay(true);
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    });
  });
}

async function closeWire(w: Wire | undefined): Promise<void> {
  if (!w) return;
  w.removeAllListeners();
  w.on("error", () => {}); // late errors of a dropped connection are expected
  if (w instanceof SerialPort) {
    if (!w.isOpen) return;
    await new Promise<void>((resolve) => {
      w.close(() => resolve());
      setTimeout(resolve, 500).unref();
    });
  } else w.destroy();
}
