/**
 * Linky / CBE "téléinformation client" framing (Enedis-NOI-CPT_02E historic, Enedis-NOI-CPT_54E
 * standard). A frame is STX (02h) groups ETX (03h); EOT (04h) aborts the frame being sent.
 * A group is LF (0Ah) … CR (0Dh):
 *   historic: LABEL SP DATA SP CHK           checksum over LABEL SP DATA      (method 1)
 *   standard: LABEL HT [HORODATE HT] DATA HT CHK  checksum over all up to the last HT (method 2)
 * CHK = (sum & 3Fh) + 20h. A checksum character can be a space: groups are never trimmed.
 * Pure code: the byte stream goes in, frames of checked groups come out.
 */

export type TicMode = "historic" | "standard";

export interface TicGroup {
  label: string;
  data: string;
  /** Standard mode only: SAAMMJJhhmmss. */
  horodate?: string;
}

export interface TicFrame {
  mode: TicMode;
  groups: TicGroup[];
  /** Groups dropped in this frame (checksum, non-printable byte, malformed). */
  dropped: number;
  /** Reasons for the dropped groups, for diagnostics. */
  errors: string[];
}

const STX = 0x02;
const ETX = 0x03;
const EOT = 0x04;
const LF = 0x0a;
const CR = 0x0d;
const HT = 0x09;
const SP = 0x20;
/** Longest frame we buffer: a standard frame is ~1 kB; garbage without ETX must not grow memory. */
const MAX_FRAME = 4096;

export function checksum(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += bytes[i]!;
  return (s & 0x3f) + 0x20;
}

export type GroupResult =
  { ok: true; group: TicGroup; mode: TicMode } | { ok: false; reason: string };

/** Check and split one group (the bytes between LF and CR, exclusive). */
export function parseGroup(g: Uint8Array): GroupResult {
  if (g.length < 4) return { ok: false, reason: `group too short (${g.length} bytes)` };
  let tabs = 0;
  for (let i = 0; i < g.length; i++) {
    const b = g[i]!;
    if (b === HT) tabs++;
    else if (b < 0x20 || b > 0x7e)
      return {
        ok: false,
        reason: `non-printable byte 0x${b.toString(16).padStart(2, "0")} at offset ${i}`,
      };
  }
  const chk = g[g.length - 1]!;
  const sep = g[g.length - 2]!;
  const text = Buffer.from(g).toString("latin1");
  if (tabs > 0) {
    if (sep !== HT) return { ok: false, reason: "standard group: no tab before the checksum" };
    const want = checksum(g, 0, g.length - 1);
    if (want !== chk)
      return {
        ok: false,
        reason: `checksum '${String.fromCharCode(chk)}' != computed '${String.fromCharCode(want)}'`,
      };
    const fields = text.slice(0, -2).split("\t");
    if (fields.length === 2)
      return { ok: true, mode: "standard", group: { label: fields[0]!, data: fields[1]! } };
    if (fields.length === 3)
      return {
        ok: true,
        mode: "standard",
        group: { label: fields[0]!, horodate: fields[1]!, data: fields[2]! },
      };
    return { ok: false, reason: `standard group with ${fields.length} fields (2 or 3 expected)` };
  }
  if (sep !== SP) return { ok: false, reason: "historic group: no space before the checksum" };
  const want = checksum(g, 0, g.length - 2);
  if (want !== chk)
    return {
      ok: false,
      reason: `checksum '${String.fromCharCode(chk)}' != computed '${String.fromCharCode(want)}'`,
    };
  const body = text.slice(0, -2);
  const sp = body.indexOf(" ");
  if (sp <= 0) return { ok: false, reason: "historic group: no space between label and data" };
  return {
    ok: true,
    mode: "historic",
    group: { label: body.slice(0, sp), data: body.slice(sp + 1) },
  };
}

export interface TicParserCounters {
  frames: number;
  groups: number;
  droppedGroups: number;
  abortedFrames: number;
  /** Bytes outside any frame or frames that overflowed. */
  discardedBytes: number;
}

/**
 * Streaming frame parser: feed it chunks split anywhere; it calls `onFrame` for every complete
 * frame. State survives across chunks, so a frame split at any byte boundary gives the same result.
 */
export class TicStreamParser {
  private readonly buf = new Uint8Array(MAX_FRAME);
  private len = 0;
  private inFrame = false;
  readonly counters: TicParserCounters = {
    frames: 0,
    groups: 0,
    droppedGroups: 0,
    abortedFrames: 0,
    discardedBytes: 0,
  };

  constructor(private readonly onFrame: (f: TicFrame) => void) {}

  feed(chunk: Uint8Array): void {
    for (const b of chunk) {
      if (b === STX) {
        if (this.inFrame) {
          // A new STX without ETX: the previous frame was cut (e.g. meter restart).
          this.counters.abortedFrames++;
        }
        this.inFrame = true;
        this.len = 0;
      } else if (b === EOT) {
        if (this.inFrame) this.counters.abortedFrames++;
        this.inFrame = false;
        this.len = 0;
      } else if (!this.inFrame) {
        this.counters.discardedBytes++;
      } else if (b === ETX) {
        this.inFrame = false;
        this.emit(this.buf.slice(0, this.len));
        this.len = 0;
      } else if (this.len >= MAX_FRAME) {
        this.counters.discardedBytes += this.len;
        this.counters.abortedFrames++;
        this.inFrame = false;
        this.len = 0;
      } else this.buf[this.len++] = b;
    }
  }

  private emit(body: Uint8Array): void {
    const groups: TicGroup[] = [];
    const errors: string[] = [];
    let dropped = 0;
    let historic = 0;
    let standard = 0;
    let i = 0;
    while (i < body.length) {
      const lf = body.indexOf(LF, i);
      if (lf < 0) {
        if (body.length - i > 0) {
          dropped++;
          errors.push("bytes after the last group");
        }
        break;
      }
      const cr = body.indexOf(CR, lf + 1);
      const nextLf = body.indexOf(LF, lf + 1);
      if (lf > i) {
        // Stray bytes between CR and LF: a byte corrupted into LF splits a group in two and the
        // tail may pass its 6-bit checksum by chance, so the group after them is dropped too.
        dropped += 2;
        errors.push(`${lf - i} stray bytes before a group; dropping that group too`);
        i = cr >= 0 && (nextLf < 0 || cr < nextLf) ? cr + 1 : nextLf >= 0 ? nextLf : body.length;
        continue;
      }
      if (cr < 0 || (nextLf >= 0 && nextLf < cr)) {
        // LF … LF: the group was cut (or a byte corrupted into LF); what follows up to the next
        // CR belongs to the damaged group and is dropped with it.
        dropped += cr < 0 ? 1 : 2;
        errors.push("group without CR (LF inside a group)");
        i = cr < 0 ? body.length : cr + 1;
        continue;
      }
      const r = parseGroup(body.subarray(lf + 1, cr));
      if (r.ok) {
        groups.push(r.group);
        if (r.mode === "historic") historic++;
        else standard++;
      } else {
        dropped++;
        errors.push(
          `${Buffer.from(body.subarray(lf + 1, Math.min(cr, lf + 9)))
            .toString("latin1")
            .replace(/[^\x20-\x7e]/g, "?")}…: ${r.reason}`,
        );
      }
      i = cr + 1;
    }
    this.counters.frames++;
    this.counters.groups += groups.length;
    this.counters.droppedGroups += dropped;
    this.onFrame({ mode: standard > historic ? "standard" : "historic", groups, dropped, errors });
  }
}
