/**
 * Simulated M-Bus slaves on one line (the meter side of EN 13757-2): SND_NKE → ACK, REQ_UD2 →
 * RSP_UD with FCB handling (same FCB = repeat the last telegram, toggled = next telegram of a
 * multi-telegram answer), secondary selection (CI 52h with wildcards) and collisions when a
 * selection matches several meters. Pluggable misbehaviour: silence, corrupted checksums.
 *
 * Collisions as on a real line: slaves send a 0 bit by drawing current and the master reads a 0
 * when any slave does (EN 13757-2 §4), so bytes sent at the same time arrive ANDed. Identical
 * ACKs overlap into one clean E5; the RSP_UDs of several selected meters arrive garbled.
 */
import {
  SIM_ACK,
  SIM_C as C,
  SIM_CI_SELECT,
  SIM_SELECTED,
  type SimFrame,
  simLongFrame,
  simNextFrame,
  simParseLong,
} from "./wire.js";

export interface SimMeter {
  address: number;
  /** Telegrams of one read-out (user data after the CI), built fresh at each request. */
  telegrams: () => Buffer[];
  /** CI of the answers: 72h (default, LSB first) or 76h (MSB first), as the replayed frames. */
  ci?: number;
  /** From the telegram header: used for secondary selection. */
  id: string;
  manufacturer: number;
  version: number;
  medium: number;
}

/** A meter that replays complete long frames (e.g. from the libmbus corpus). */
export function meterFromFrames(address: number, frames: Buffer[]): SimMeter {
  const parsed = frames.map(simParseLong);
  const ci = parsed[0]!.ci;
  if (![0x70, 0x72, 0x76, 0x78].includes(ci))
    throw new Error(
      `a replayed frame must have CI 72h, 76h, 78h (variable data) or 70h (application error), not ${ci.toString(16)}h`,
    );
  if (parsed.some((p) => p.ci !== ci)) throw new Error("replayed frames of one meter mix CIs");
  const datas = parsed.map((p) => p.data);
  // CI 70h and 78h carry no header: such a meter is reachable by primary address only.
  if (ci === 0x70 || ci === 0x78)
    return { address, ci, telegrams: () => datas, id: "", manufacturer: 0, version: 0, medium: 0 };
  const h = datas[0]!;
  // CI 76h sends the header most significant byte first (EN 13757-3 §5).
  const msb = ci === 0x76;
  const id = Buffer.from(h.subarray(0, 4));
  return {
    address,
    ci,
    telegrams: () => datas,
    id: (msb ? id : id.reverse()).toString("hex").toUpperCase(),
    manufacturer: msb ? h.readUInt16BE(4) : h.readUInt16LE(4),
    version: h[6]!,
    medium: h[7]!,
  };
}

export interface SlaveOptions {
  /** Corrupt the checksum of every Nth RSP_UD (0 = never). */
  corruptEvery?: number;
  /** Addresses that stay silent. */
  silent?: Set<number>;
  /**
   * How simultaneous answers look: "overlap" (default) ANDs them byte by byte, as the line does;
   * "skewed" sends each meter's ACK one after the other (meters answering a few bits apart).
   */
  collisions?: "overlap" | "skewed";
  log?: (msg: string) => void;
}

interface MeterState {
  fcb: number | undefined;
  index: number;
  last: Buffer | undefined;
}

export class MbusSlaveSim {
  private buf = Buffer.alloc(0);
  /** Meters selected by the last CI 52h frame (several when the mask matched several). */
  private selected: SimMeter[] = [];
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
      const r = simNextFrame(this.buf);
      if ("need" in r) return;
      if ("skip" in r) {
        this.buf = this.buf.subarray(r.skip);
        continue;
      }
      this.buf = this.buf.subarray(r.used);
      this.handle(r.frame);
    }
  }

  private st(m: SimMeter): MeterState {
    let s = this.state.get(m);
    if (!s) this.state.set(m, (s = { fcb: undefined, index: 0, last: undefined }));
    return s;
  }

  private targets(address: number): SimMeter[] {
    if (address === SIM_SELECTED) return this.selected;
    if (this.o.silent?.has(address)) return [];
    return this.meters.filter((m) => m.address === address);
  }

  /** Answers sent at the same moment by several meters, as the master receives them. */
  private send(answers: Buffer[]): void {
    if (answers.length === 0) return;
    if (answers.length > 1) this.stats.collisions++;
    if (answers.length > 1 && this.o.collisions === "skewed") {
      this.reply(Buffer.concat(answers));
      return;
    }
    const out = Buffer.alloc(Math.max(...answers.map((a) => a.length)), 0xff);
    for (const a of answers) for (let i = 0; i < a.length; i++) out[i] = out[i]! & a[i]!;
    this.reply(out);
  }

  private handle(f: SimFrame): void {
    this.stats.requests++;
    if (f.kind === "short" && (f.control & 0xdf) === C.SND_NKE) {
      const ms = this.targets(f.address);
      for (const m of ms) Object.assign(this.st(m), { fcb: undefined, index: 0, last: undefined });
      this.send(ms.map(() => Buffer.from([SIM_ACK])));
      return;
    }
    if (f.kind === "short" && (f.control & 0xdf) === C.REQ_UD2) {
      const answers: Buffer[] = [];
      for (const m of this.targets(f.address)) {
        const a = this.answer(m, f.control, f.address);
        if (a) answers.push(a);
      }
      this.send(answers);
      return;
    }
    if (
      f.kind === "long" &&
      (f.control & 0xdf) === C.SND_UD &&
      f.address === SIM_SELECTED &&
      f.ci === SIM_CI_SELECT
    ) {
      const hits = this.meters.filter((m) => !this.o.silent?.has(m.address) && matches(m, f.data));
      this.selected = hits;
      for (const m of hits)
        Object.assign(this.st(m), { fcb: undefined, index: 0, last: undefined });
      this.send(hits.map(() => Buffer.from([SIM_ACK])));
    }
  }

  /** One meter's RSP_UD to a REQ_UD2, or undefined when it has nothing to say. */
  private answer(m: SimMeter, control: number, address: number): Buffer | undefined {
    const s = this.st(m);
    const fcb = control & C.FCB ? 1 : 0;
    const telegrams = m.telegrams();
    if (s.last && s.fcb === fcb) {
      this.o.log?.(`address ${address}: same FCB, repeating telegram ${s.index}`);
    } else {
      // Toggled FCB (or first request after SND_NKE/selection): next telegram, wrapping.
      const index = s.last ? (s.index + 1) % telegrams.length : 0;
      const telegram = telegrams[index];
      if (!telegram) return undefined; // a meter with no telegram stays silent
      s.index = index;
      s.fcb = fcb;
      s.last = simLongFrame(C.RSP_UD, m.address, m.ci ?? 0x72, telegram);
    }
    let out = s.last;
    this.answered++;
    if (this.o.corruptEvery && this.answered % this.o.corruptEvery === 0) {
      out = Buffer.from(out);
      out[out.length - 2] = out[out.length - 2]! ^ 0xff;
    }
    this.stats.responses++;
    return out;
  }
}

/** Secondary selection: BCD id with F wildcard nibbles, FFFFh / FFh wildcards for the rest. */
function matches(m: SimMeter, d: Buffer): boolean {
  if (d.length < 8 || m.id === "") return false;
  const mask = Buffer.from(d.subarray(0, 4)).reverse().toString("hex").toUpperCase();
  const id = m.id.padStart(8, "0");
  for (let k = 0; k < 8; k++) if (mask[k] !== "F" && mask[k] !== id[k]) return false;
  const man = d.readUInt16LE(4);
  if (man !== 0xffff && man !== m.manufacturer) return false;
  if (d[6] !== 0xff && d[6] !== m.version) return false;
  if (d[7] !== 0xff && d[7] !== m.medium) return false;
  return true;
}
