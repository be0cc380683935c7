/**
 * Simulated M-Bus slaves on one line (the meter side of EN 13757-2): SND_NKE → ACK, REQ_UD2 →
 * RSP_UD with FCB handling (same FCB = repeat the last telegram, toggled = next telegram of a
 * multi-telegram answer), secondary selection (CI 52h with wildcards) and collisions when a
 * selection matches several meters. Pluggable misbehaviour: silence, corrupted checksums.
 */
import {
  ADDR_SELECTED,
  C,
  CI,
  type MbusFrame,
  longFrame,
  parseFrame,
  scanFrame,
} from "../../drivers/mbus/frame.js";

export interface SimMeter {
  address: number;
  /** Telegrams of one read-out (user data after CI 72h), built fresh at each request. */
  telegrams: () => Buffer[];
  /** From the telegram header: used for secondary selection. */
  id: string;
  manufacturer: number;
  version: number;
  medium: number;
}

/** A meter that replays complete long frames (e.g. from the libmbus corpus). */
export function meterFromFrames(address: number, frames: Buffer[]): SimMeter {
  const datas = frames.map((f) => {
    const p = parseFrame(f);
    if (p.kind !== "long") throw new Error("a replayed M-Bus frame must be a long RSP_UD frame");
    return p.data;
  });
  const h = datas[0]!;
  return {
    address,
    telegrams: () => datas,
    id: Buffer.from(h.subarray(0, 4)).reverse().toString("hex").toUpperCase(),
    manufacturer: h.readUInt16LE(4),
    version: h[6]!,
    medium: h[7]!,
  };
}

export interface SlaveOptions {
  /** Corrupt the checksum of every Nth RSP_UD (0 = never). */
  corruptEvery?: number;
  /** Addresses that stay silent. */
  silent?: Set<number>;
  log?: (msg: string) => void;
}

interface MeterState {
  fcb: number | undefined;
  index: number;
  last: Buffer | undefined;
}

export class MbusSlaveSim {
  private buf = Buffer.alloc(0);
  private selected: SimMeter | undefined;
  private readonly state = new Map<SimMeter, MeterState>();
  private answered = 0;
  readonly stats = { requests: 0, responses: 0, collisions: 0 };

  constructor(
    private readonly meters: SimMeter[],
    private readonly reply: (bytes: Buffer) => void,
    private readonly o: SlaveOptions = {},
  ) {}

  feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const r = scanFrame(this.buf);
      if (r.status === "need") return;
      if (r.status === "invalid") {
        this.buf = this.buf.subarray(r.skip);
        continue;
      }
      this.buf = this.buf.subarray(r.length);
      this.handle(r.frame);
    }
  }

  private st(m: SimMeter): MeterState {
    let s = this.state.get(m);
    if (!s) this.state.set(m, (s = { fcb: undefined, index: 0, last: undefined }));
    return s;
  }

  private target(address: number): SimMeter | undefined {
    if (address === ADDR_SELECTED) return this.selected;
    if (this.o.silent?.has(address)) return undefined;
    return this.meters.find((m) => m.address === address);
  }

  private handle(f: MbusFrame): void {
    this.stats.requests++;
    if (f.kind === "short" && (f.control & 0xdf) === C.SND_NKE) {
      const m = this.target(f.address);
      if (!m) return;
      Object.assign(this.st(m), { fcb: undefined, index: 0, last: undefined });
      this.reply(Buffer.from([0xe5]));
      return;
    }
    if (f.kind === "short" && (f.control & 0xdf) === C.REQ_UD2) {
      const m = this.target(f.address);
      if (!m) return;
      const s = this.st(m);
      const fcb = f.control & C.FCB ? 1 : 0;
      const telegrams = m.telegrams();
      if (s.last && s.fcb === fcb) {
        this.o.log?.(`address ${f.address}: same FCB, repeating telegram ${s.index}`);
      } else {
        // Toggled FCB (or first request after SND_NKE/selection): next telegram, wrapping.
        const index = s.last ? (s.index + 1) % telegrams.length : 0;
        const telegram = telegrams[index];
        if (!telegram) return; // a meter with no telegram stays silent
        s.index = index;
        s.fcb = fcb;
        s.last = longFrame(C.RSP_UD, m.address, CI.VARIABLE_LE, telegram);
      }
      let out = s.last;
      this.answered++;
      if (this.o.corruptEvery && this.answered % this.o.corruptEvery === 0) {
        out = Buffer.from(out);
        out[out.length - 2] = out[out.length - 2]! ^ 0xff;
      }
      this.stats.responses++;
      this.reply(out);
      return;
    }
    if (
      f.kind === "long" &&
      (f.control & 0xdf) === C.SND_UD &&
      f.address === ADDR_SELECTED &&
      f.ci === CI.SELECT_SECONDARY
    ) {
      const hits = this.meters.filter((m) => !this.o.silent?.has(m.address) && matches(m, f.data));
      this.selected = hits.length === 1 ? hits[0] : undefined;
      if (hits.length === 1) {
        Object.assign(this.st(hits[0]!), { fcb: undefined, index: 0, last: undefined });
        this.reply(Buffer.from([0xe5]));
      } else if (hits.length > 1) {
        // Several meters answer at once: the master sees garbled bytes (here: ACKs run together).
        this.stats.collisions++;
        this.reply(Buffer.from([0xe5, 0xe5, 0xe5]));
      }
    }
  }
}

/** Secondary selection: BCD id with F wildcard nibbles, FFFFh / FFh wildcards for the rest. */
function matches(m: SimMeter, d: Buffer): boolean {
  if (d.length < 8) return false;
  const mask = Buffer.from(d.subarray(0, 4)).reverse().toString("hex").toUpperCase();
  const id = m.id.padStart(8, "0");
  for (let k = 0; k < 8; k++) if (mask[k] !== "F" && mask[k] !== id[k]) return false;
  const man = d.readUInt16LE(4);
  if (man !== 0xffff && man !== m.manufacturer) return false;
  if (d[6] !== 0xff && d[6] !== m.version) return false;
  if (d[7] !== 0xff && d[7] !== m.medium) return false;
  return true;
}
