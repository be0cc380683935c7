/**
 * A simulated Linky/CBE meter: realistic TIC frames in historic or standard mode, with indexes
 * that grow with the simulated load and horodates carrying the summer/winter flag. Optional
 * misbehaviour: a corrupted byte every Nth frame, an EOT-aborted frame every Mth frame.
 */
import {
  type SimTicMode as TicMode,
  ticFrame as encodeFrame,
  ticGroup as encodeGroup,
} from "./wire.js";

export interface TicMeterOptions {
  mode: TicMode;
  /** ADCO/ADSC, 12 digits. */
  meterId?: string;
  /** Starting indexes in Wh. */
  startWh?: number;
  corruptEvery?: number;
  abortEvery?: number;
  now?: () => number;
}

const pad = (n: number, w: number) =>
  String(Math.max(0, Math.round(n)))
    .padStart(w, "0")
    .slice(-w);

/** Paris wall-clock fields and season letter (E = summer time, H = winter time). */
export function parisTime(ms: number): {
  season: "E" | "H";
  y: string;
  mo: string;
  d: string;
  h: string;
  mi: string;
  s: string;
} {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone: "Europe/Paris",
      year: "2-digit",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
      timeZoneName: "shortOffset",
    })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  return {
    season: parts.timeZoneName === "GMT+2" ? "E" : "H",
    y: parts.year!,
    mo: parts.month!,
    d: parts.day!,
    h: parts.hour!,
    mi: parts.minute!,
    s: parts.second!,
  };
}

export function horodate(ms: number): string {
  const t = parisTime(ms);
  return `${t.season}${t.y}${t.mo}${t.d}${t.h}${t.mi}${t.s}`;
}

export class TicMeterSim {
  private hc: number;
  private hp: number;
  private last: number;
  private n = 0;
  private smax = 0;
  private smaxAt: number;
  readonly meterId: string;

  constructor(private readonly o: TicMeterOptions) {
    this.meterId = o.meterId ?? (o.mode === "historic" ? "021528603314" : "041876097467");
    this.hc = o.startWh ?? 723_392;
    this.hp = (o.startWh ?? 723_392) * 2.4;
    this.last = this.now();
    this.smaxAt = this.last;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Apparent power: a base load with a slow swing and some noise. */
  private load(ms: number): number {
    return 450 + 350 * Math.sin(ms / 60_000) + Math.random() * 80;
  }

  /** The next frame, as bytes on the wire (STX … ETX, or STX … EOT when aborted). */
  nextFrame(): Buffer {
    const now = this.now();
    const va = this.load(now);
    const dt = (now - this.last) / 3_600_000;
    this.last = now;
    const hour = Number(parisTime(now).h);
    const offPeak = hour >= 22 || hour < 6;
    // Energy with cos φ ≈ 0.9; at least 1 Wh per frame so indexes visibly grow in a demo.
    const wh = Math.max(1, va * 0.9 * dt);
    if (offPeak) this.hc += wh;
    else this.hp += wh;
    if (va > this.smax) {
      this.smax = va;
      this.smaxAt = now;
    }
    const amps = va / 230;
    const groups =
      this.o.mode === "historic"
        ? this.historic(va, amps, offPeak)
        : this.standard(now, va, amps, offPeak);
    this.n++;
    let frame = encodeFrame(groups);
    if (this.o.corruptEvery && this.n % this.o.corruptEvery === 0) {
      // Flip a bit inside the third group's data: its checksum must catch it.
      const at = groups.slice(0, 2).reduce((s, g) => s + g.length, 1) + 6;
      frame = Buffer.from(frame);
      frame[at] = frame[at]! ^ 0x01;
    }
    if (this.o.abortEvery && this.n % this.o.abortEvery === 0) {
      frame = Buffer.concat([frame.subarray(0, Math.floor(frame.length / 2)), Buffer.from([0x04])]);
    }
    return frame;
  }

  private historic(va: number, amps: number, offPeak: boolean): Buffer[] {
    const g = (l: string, d: string) => encodeGroup("historic", l, d);
    return [
      g("ADCO", this.meterId),
      g("OPTARIF", "HC.."),
      g("ISOUSC", "30"),
      g("HCHC", pad(this.hc, 9)),
      g("HCHP", pad(this.hp, 9)),
      g("PTEC", offPeak ? "HC.." : "HP.."),
      g("IINST", pad(amps, 3)),
      g("IMAX", "090"),
      g("PAPP", pad(Math.round(va / 10) * 10, 5)),
      g("HHPHC", "A"),
      g("MOTDETAT", "000000"),
    ];
  }

  private standard(now: number, va: number, amps: number, offPeak: boolean): Buffer[] {
    const g = (l: string, d: string, h?: string) => encodeGroup("standard", l, d, h);
    const total = this.hc + this.hp;
    return [
      g("ADSC", this.meterId),
      g("VTIC", "02"),
      g("DATE", "", horodate(now)),
      g("NGTF", "      H PLEINE/CREUSE "),
      g("LTARF", offPeak ? "    HEURE  CREUSE    " : "    HEURE  PLEINE    "),
      g("EAST", pad(total, 9)),
      g("EASF01", pad(this.hc, 9)),
      g("EASF02", pad(this.hp, 9)),
      g("EASD01", pad(this.hc, 9)),
      g("EASD02", pad(this.hp, 9)),
      g("IRMS1", pad(amps, 3)),
      g("URMS1", pad(228 + Math.random() * 6, 3)),
      g("PREF", "09"),
      g("PCOUP", "09"),
      g("SINSTS", pad(va, 5)),
      g("SMAXSN", pad(this.smax, 5), horodate(this.smaxAt)),
      g("CCASN", pad(va * 0.9, 5), horodate(now - (now % 1_800_000))),
      g("UMOY1", "230", horodate(now - (now % 600_000))),
      g("STGE", offPeak ? "003A0001" : "003A4001"),
      g("MSG1", "PAS DE          MESSAGE         "),
      g("PRM", "30001441534280"),
      g("RELAIS", "000"),
      g("NTARF", offPeak ? "01" : "02"),
      g("NJOURF", "00"),
      g("NJOURF+1", "00"),
      g(
        "PJOURF+1",
        "00008001 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE",
      ),
    ];
  }
}
