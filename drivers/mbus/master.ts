/**
 * M-Bus master (EN 13757-2 §5, EN 13757-3 §11): one request at a time on a half-duplex line.
 * SND_NKE, REQ_UD2 with the frame count bit (FCB) toggled after every answered request and kept
 * on a retry (so the slave repeats its last telegram), multi-telegram reads (DIF 1Fh), secondary
 * addressing (SND_UD CI 52h, wildcard F digits) and scans of both address spaces.
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type MbusData, parseUserData } from "./data.js";
import {
  ACK,
  ADDR_SELECTED,
  C,
  CI,
  type MbusFrame,
  longFrame,
  scanFrame,
  shortFrame,
} from "./frame.js";

export type Send = (bytes: Buffer) => Promise<void>;

export interface MasterOptions {
  timeoutMs: number;
  retries: number;
}

export interface MasterCounters {
  requests: number;
  timeouts: number;
  badFrames: number;
  goodFrames: number;
}

type Outcome = { frame: MbusFrame } | { garbage: string } | { timeout: true };

/** Secondary address mask: 8 id digits (F = any), manufacturer, version, medium (FF… = any). */
export interface SecondaryMask {
  id: string;
  manufacturer?: number;
  version?: number;
  medium?: number;
}

export function selectPayload(m: SecondaryMask): Buffer {
  if (!/^[0-9Ff]{8}$/.test(m.id))
    throw new EdgeError(
      ErrorCode.DriverConfig,
      `secondary id "${m.id}" must be 8 digits (F = wildcard)`,
    );
  const id = Buffer.from(m.id.toUpperCase(), "hex").reverse(); // BCD, least significant byte first
  const out = Buffer.alloc(8);
  id.copy(out, 0);
  out.writeUInt16LE(m.manufacturer ?? 0xffff, 4);
  out[6] = m.version ?? 0xff;
  out[7] = m.medium ?? 0xff;
  return out;
}

/** Parse "12345678" or "12345678" + "MMMM" + "VV" + "DD" (hex) into a mask. */
export function parseSecondary(s: string): SecondaryMask {
  const id = s.slice(0, 8);
  if (s.length === 8) return { id };
  return {
    id,
    manufacturer: parseInt(s.slice(8, 12), 16),
    version: parseInt(s.slice(12, 14), 16),
    medium: parseInt(s.slice(14, 16), 16),
  };
}

export class MbusMaster {
  private buf = Buffer.alloc(0);
  private waiter: ((o: Outcome) => void) | undefined;
  private garbage: string | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly fcb = new Map<number, number>();
  readonly counters: MasterCounters = { requests: 0, timeouts: 0, badFrames: 0, goodFrames: 0 };
  lastGoodFrameTs = 0;
  /** Bytes that arrived while no request was waiting (late answers, extra ACKs). */
  private unsolicited = 0;

  constructor(
    private readonly send: Send,
    private readonly o: MasterOptions,
  ) {}

  /** Feed bytes from the line. */
  onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const r = scanFrame(this.buf);
      if (r.status === "need") return;
      if (r.status === "invalid") {
        if (!this.waiter) this.unsolicited += r.skip;
        this.buf = this.buf.subarray(r.skip);
        this.garbage ??= r.reason;
        continue;
      }
      this.buf = this.buf.subarray(r.length);
      const w = this.waiter;
      // A frame of the wrong kind (a late ACK of the previous request, our own echo on a
      // converter that echoes) is not the answer: keep waiting for the right one.
      if (!w || !this.accept(r.frame)) {
        this.unsolicited += r.length;
        continue;
      }
      this.waiter = undefined;
      this.garbage = undefined;
      w({ frame: r.frame });
    }
  }

  /** Serialise transactions: the bus is half duplex. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private accept: (f: MbusFrame) => boolean = () => true;

  /** Send one request and wait for an answer of the expected kind. */
  private async transact(
    bytes: Buffer,
    expect: "ack" | "long" | "any",
    timeoutMs = this.o.timeoutMs,
  ): Promise<Outcome> {
    this.accept = (f) => expect === "any" || f.kind === expect;
    this.buf = Buffer.alloc(0);
    this.garbage = undefined;
    this.counters.requests++;
    const outcome = new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        // Bytes that never formed a frame (collision, noise, bad checksum) vs plain silence.
        const g =
          this.garbage ??
          (this.buf.length > 0 ? `${this.buf.length} bytes without a complete frame` : undefined);
        resolve(g ? { garbage: g } : { timeout: true });
      }, timeoutMs);
      this.waiter = (o) => {
        clearTimeout(timer);
        resolve(o);
      };
    });
    await this.send(bytes);
    const o = await outcome;
    if ("timeout" in o) this.counters.timeouts++;
    else if ("garbage" in o) this.counters.badFrames++;
    else {
      this.counters.goodFrames++;
      this.lastGoodFrameTs = Date.now();
    }
    return o;
  }

  private fail(o: Outcome, what: string): never {
    if ("garbage" in o)
      throw new EdgeError(ErrorCode.DeviceFrame, `${what}: invalid answer (${o.garbage})`);
    throw new EdgeError(
      ErrorCode.DeviceTimeout,
      `${what}: no answer within ${this.o.timeoutMs} ms`,
    );
  }

  /** SND_NKE: reset the slave's link layer (and its FCB expectation). Resolves true on ACK. */
  sndNke(address: number): Promise<boolean> {
    return this.exclusive(async () => {
      for (let t = 0; t <= this.o.retries; t++) {
        const o = await this.transact(shortFrame(C.SND_NKE, address), "ack");
        if ("frame" in o && o.frame.kind === "ack") {
          this.fcb.set(address, 1); // the first REQ_UD2 after a reset carries FCB = 1
          return true;
        }
      }
      return false;
    });
  }

  /** One REQ_UD2 → RSP_UD, retried with the same FCB, toggled after an answer. */
  private async reqUd2(address: number): Promise<MbusData> {
    const fcb = this.fcb.get(address) ?? 1;
    let last: Outcome = { timeout: true };
    for (let t = 0; t <= this.o.retries; t++) {
      last = await this.transact(shortFrame(C.REQ_UD2 | (fcb ? C.FCB : 0), address), "long");
      if ("frame" in last) {
        this.fcb.set(address, fcb ^ 1);
        return parseUserData(last.frame);
      }
    }
    this.fail(last, `REQ_UD2 to address ${address}`);
  }

  /**
   * Read every telegram of a meter: SND_NKE, then REQ_UD2 while a record says more follow
   * (EN 13757-3 §6.5, DIF 1Fh), up to `maxTelegrams`.
   */
  readAll(address: number, maxTelegrams = 8, reset = true): Promise<MbusData[]> {
    return this.exclusive(() => this.readAllNow(address, maxTelegrams, reset));
  }

  private async readAllNow(
    address: number,
    maxTelegrams: number,
    reset: boolean,
  ): Promise<MbusData[]> {
    {
      if (reset) {
        const o = await this.transact(shortFrame(C.SND_NKE, address), "ack");
        // A meter that does not ACK the reset may still answer REQ_UD2: the read decides.
        if ("frame" in o && o.frame.kind === "ack") this.fcb.set(address, 1);
        else if (!this.fcb.has(address)) this.fcb.set(address, 1);
      }
      const out: MbusData[] = [];
      for (let k = 0; k < maxTelegrams; k++) {
        const d = await this.reqUd2(address);
        out.push(d);
        if (!d.moreRecordsFollow) break;
      }
      return out;
    }
  }

  /**
   * Select a meter by secondary address (SND_UD to 253 with CI 52h). Returns "selected" on ACK,
   * "none" on silence, "collision" when several meters answered (garbled bytes).
   */
  select(mask: SecondaryMask): Promise<"selected" | "none" | "collision"> {
    return this.exclusive(() => this.selectNow(mask));
  }

  private async selectNow(mask: SecondaryMask): Promise<"selected" | "none" | "collision"> {
    const before = this.unsolicited;
    const o = await this.transact(
      longFrame(C.SND_UD, ADDR_SELECTED, CI.SELECT_SECONDARY, selectPayload(mask)),
      "any",
    );
    if (!("frame" in o)) return "garbage" in o ? "collision" : "none";
    if (o.frame.kind !== "ack") return "collision";
    // Several meters may ACK at once: anything more on the line right after the ACK is a
    // collision (libmbus does the same purge in mbus_select_secondary_address).
    await new Promise((r) => setTimeout(r, Math.min(100, Math.max(20, this.o.timeoutMs / 4))));
    return this.unsolicited > before || this.buf.length > 0 ? "collision" : "selected";
  }

  /**
   * Select, then read the first telegram at address 253: libmbus's `mbus_probe_secondary_address`.
   * Meters that acknowledge together send the same byte E5 at the same moment; on the line
   * (a 0 bit wins, EN 13757-2 §4) that is one clean ACK, so only the read tells: their RSP_UDs
   * overlap into bytes that form no valid frame, or the telegram carries an id outside the mask.
   * Both are collisions.
   */
  private async probeNow(
    mask: SecondaryMask,
  ): Promise<{ r: "none" | "collision" } | { r: "selected"; data: MbusData }> {
    const sel = await this.selectNow(mask);
    if (sel !== "selected") return { r: sel };
    this.fcb.set(ADDR_SELECTED, 1);
    let last: Outcome = { timeout: true };
    for (let t = 0; t <= this.o.retries; t++) {
      last = await this.transact(shortFrame(C.REQ_UD2 | C.FCB, ADDR_SELECTED), "long");
      if ("garbage" in last) return { r: "collision" };
      if ("frame" in last) break;
    }
    if (!("frame" in last)) return { r: "none" }; // acknowledged, then silent: as libmbus
    this.fcb.set(ADDR_SELECTED, 0);
    const data = parseUserData(last.frame);
    // CI 78h telegrams carry no id: nothing to compare.
    const want = mask.id.toUpperCase();
    const got = data.header.id.padStart(8, "0");
    if (data.header.id !== "")
      for (let k = 0; k < 8; k++)
        if (want[k] !== "F" && want[k] !== got[k]) return { r: "collision" };
    return { r: "selected", data };
  }

  /** Read a meter by secondary address: select, then read at address 253, as one transaction. */
  readSecondary(id: string, maxTelegrams = 8): Promise<MbusData[]> {
    return this.exclusive(async () => {
      const p = await this.probeNow(parseSecondary(id));
      if (p.r === "none")
        throw new EdgeError(
          ErrorCode.DeviceTimeout,
          `no meter acknowledged selection of secondary address ${id}`,
        );
      if (p.r !== "selected")
        throw new EdgeError(
          ErrorCode.DeviceFrame,
          `several meters answered secondary address ${id} (collision): use a full address`,
        );
      const out = [p.data];
      if (p.data.moreRecordsFollow && maxTelegrams > 1)
        out.push(...(await this.readAllNow(ADDR_SELECTED, maxTelegrams - 1, false)));
      return out;
    });
  }

  /** Primary scan: SND_NKE to each address; the ones that ACK are then read for their header. */
  async scanPrimary(
    from = 0,
    to = 250,
    onProgress?: (address: number) => void,
  ): Promise<{ address: number; data?: MbusData; error?: string }[]> {
    const found: { address: number; data?: MbusData; error?: string }[] = [];
    for (let a = from; a <= to; a++) {
      onProgress?.(a);
      if (!(await this.sndNke(a))) continue;
      try {
        const [d] = await this.readAll(a, 1, false);
        found.push({ address: a, ...(d ? { data: d } : {}) });
      } catch (e) {
        found.push({ address: a, error: (e as Error).message });
      }
    }
    return found;
  }

  /**
   * Secondary scan with wildcards (EN 13757-3 annex, as libmbus and most masters do it): fix one
   * digit at a time; on a collision fix the next digit too; on a single ACK read the header.
   */
  async scanSecondary(
    onProgress?: (mask: string) => void,
  ): Promise<{ id: string; data?: MbusData; error?: string }[]> {
    const found: { id: string; data?: MbusData; error?: string }[] = [];
    const walk = async (prefix: string): Promise<void> => {
      for (let digit = 0; digit <= 9; digit++) {
        const p = prefix + String(digit);
        const mask = p.padEnd(8, "F");
        onProgress?.(mask);
        let r: Awaited<ReturnType<MbusMaster["probeNow"]>>;
        try {
          r = await this.exclusive(() => this.probeNow({ id: mask }));
        } catch (e) {
          // One clean telegram that does not decode: a meter is there, its data is the problem.
          found.push({ id: mask, error: (e as Error).message });
          continue;
        }
        if (r.r === "none") continue;
        if (r.r === "collision" && p.length < 8) {
          await walk(p);
          continue;
        }
        if (r.r === "selected") found.push({ id: r.data.header.id || mask, data: r.data });
        else found.push({ id: mask, error: "collision on a full address" });
      }
    };
    await walk("");
    return found;
  }

  /** Drop any pending waiter (driver stop). */
  close(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ timeout: true });
  }
}

export { ACK };
