/**
 * A serial line shared by the TIC and M-Bus drivers: opens the port, reopens it with backoff when
 * it disappears (USB converter unplugged, socat restarted) and reports its state in plain words.
 *
 * Transports sit behind a factory (model: zwave-js `createNodeSerialPortFactory`), so the same
 * code runs on a real UART, on a socat pty in tests, or on serialport's mock binding.
 *
 * Note on parity: we pass the configured data bits/parity to the UART, which generates the
 * parity bit and strips it on input, but node-serialport sets only IGNPAR and leaves INPCK off
 * (@serialport/bindings-cpp serialport_unix.cpp), with no option to enable it: received parity
 * is NOT checked. The protocol layers protect the data (M-Bus: checksum and frame structure;
 * TIC: group checksum, printable bytes, closed label sets and per-label formats). A pty
 * simulates neither baud rate nor parity.
 */
import { SerialPort } from "serialport";
import { EdgeError, ErrorCode, describeError } from "../../core/errors.js";

export interface SerialOptions {
  path: string;
  baudRate: number;
  dataBits: 7 | 8;
  parity: "none" | "even" | "odd";
  stopBits: 1 | 2;
}

/** One open port. `onClose` fires once, with an error when the port went away by itself. */
export interface RawSerial {
  write(data: Buffer): Promise<void>;
  close(): Promise<void>;
  onData(cb: (chunk: Buffer) => void): void;
  onClose(cb: (err?: Error) => void): void;
}

export type SerialFactory = (opts: SerialOptions) => Promise<RawSerial>;

/** The real transport: the `serialport` package (works on UARTs, USB adapters and ptys). */
export const nodeSerialFactory: SerialFactory = (opts) =>
  new Promise((resolve, reject) => {
    const port = new SerialPort({ ...opts, autoOpen: false, lock: false });
    port.open((err) => {
      if (err) {
        reject(err);
        return;
      }
      let closed = false;
      const closeCbs: ((err?: Error) => void)[] = [];
      const fireClose = (e?: Error) => {
        if (closed) return;
        closed = true;
        for (const cb of closeCbs) cb(e);
      };
      port.on("close", (e?: Error | null) => fireClose(e ?? undefined));
      // A read error (EIO when the other end of a pty vanishes) precedes or replaces 'close'.
      port.on("error", (e: Error) => {
        fireClose(e);
        if (port.isOpen) port.close(() => undefined);
      });
      resolve({
        write: (data) =>
          new Promise<void>((res, rej) => {
            // Resolve when the kernel has the bytes. No drain(): tcdrain() runs in libuv's small
            // thread pool and on a pty it can block until the peer reads, stalling every other
            // port operation of the process (seen under load in the socat tests).
            port.write(data, (e) => (e ? rej(e) : res()));
          }),
        close: () =>
          new Promise<void>((res) => {
            closed = true;
            if (!port.isOpen) res();
            else port.close(() => res());
          }),
        onData: (cb) => port.on("data", cb),
        onClose: (cb) => closeCbs.push(cb),
      });
    });
  });

export type PortState = "stopped" | "opening" | "open" | "waiting";

export interface ReconnectingPortOptions {
  factory?: SerialFactory;
  /** First retry delay (ms); doubles up to maxDelayMs, with ±20 % jitter. */
  minDelayMs?: number;
  maxDelayMs?: number;
  onData: (chunk: Buffer) => void;
  /** Called on every state change with a plain-words detail. */
  onState?: (state: PortState, detail: string) => void;
}

export function describeSerial(o: SerialOptions): string {
  return `${o.baudRate} ${o.dataBits}${o.parity[0]!.toUpperCase()}${o.stopBits}`;
}

/** A port that keeps itself open: retried with backoff until `stop()`. */
export class ReconnectingPort {
  private port: RawSerial | undefined;
  private state: PortState = "stopped";
  private detailText = "not started";
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private generation = 0;
  openCount = 0;
  lostCount = 0;

  constructor(
    private opts: SerialOptions,
    private readonly o: ReconnectingPortOptions,
  ) {}

  get options(): SerialOptions {
    return this.opts;
  }
  get isOpen(): boolean {
    return this.state === "open";
  }
  get detail(): string {
    return this.detailText;
  }

  start(): void {
    if (this.state !== "stopped") return;
    this.attempt = 0;
    void this.open();
  }

  async stop(): Promise<void> {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.port;
    this.port = undefined;
    this.set("stopped", `port ${this.opts.path} closed`);
    if (p) await p.close();
  }

  /** Reopen with other line settings (TIC mode detection switches 1200 ↔ 9600). */
  async reconfigure(opts: Partial<SerialOptions>): Promise<void> {
    await this.stop();
    this.opts = { ...this.opts, ...opts };
    this.start();
  }

  async write(data: Buffer): Promise<void> {
    if (!this.port || this.state !== "open") {
      throw new EdgeError(
        ErrorCode.PortUnavailable,
        `serial port ${this.opts.path} is not open (${this.detailText})`,
      );
    }
    await this.port.write(data);
  }

  private openWaiters: (() => void)[] = [];

  /** Resolves true once the port is open, false after `timeoutMs` (e.g. a poll right at start). */
  whenOpen(timeoutMs: number): Promise<boolean> {
    if (this.state === "open") return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      const t = setTimeout(() => {
        this.openWaiters = this.openWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.openWaiters.push(done);
    });
  }

  private set(state: PortState, detail: string): void {
    this.state = state;
    this.detailText = detail;
    if (state === "open") for (const w of this.openWaiters.splice(0)) w();
    this.o.onState?.(state, detail);
  }

  private async open(): Promise<void> {
    const gen = ++this.generation;
    this.set("opening", `opening ${this.opts.path} at ${describeSerial(this.opts)}`);
    try {
      const port = await (this.o.factory ?? nodeSerialFactory)(this.opts);
      if (gen !== this.generation) {
        await port.close();
        return;
      }
      this.port = port;
      this.attempt = 0;
      this.openCount++;
      port.onData((c) => {
        if (gen === this.generation) this.o.onData(c);
      });
      port.onClose((err) => {
        if (gen !== this.generation) return;
        this.port = undefined;
        this.lostCount++;
        this.retry(`port ${this.opts.path} lost${err ? ` (${describeError(err)})` : ""}`);
      });
      this.set("open", `port ${this.opts.path} open at ${describeSerial(this.opts)}`);
    } catch (e) {
      if (gen !== this.generation) return;
      this.retry(`cannot open ${this.opts.path}: ${describeError(e)}`);
    }
  }

  private retry(why: string): void {
    const min = this.o.minDelayMs ?? 1000;
    const max = this.o.maxDelayMs ?? 30_000;
    const base = Math.min(max, min * 2 ** this.attempt++);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.set("waiting", `${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
    const gen = this.generation;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (gen === this.generation) void this.open();
    }, delay);
  }
}
