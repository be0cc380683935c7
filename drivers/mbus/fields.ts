/**
 * Field codings of the M-Bus application layer (EN 13757-3 annex A/B): BCD, FLAG manufacturer
 * codes, dates type G/F/I, and the byte order of CI 76h/77h. Pure functions shared by the variable
 * (data.ts) and fixed (fixed.ts) data structures.
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";

/** BCD little-endian; an F in the most significant digit means negative (EN 13757-3 annex B). */
export function bcd(b: Uint8Array): number {
  let v = 0;
  for (let i = b.length - 1; i >= 0; i--) {
    const hi = b[i]! >> 4;
    // The sign nibble (and any A–E error nibble) in the high position counts as 0, as libmbus does.
    v = v * 10 + (hi < 10 ? hi : 0);
    v = v * 10 + (b[i]! & 0x0f);
  }
  return b.length > 0 && b[b.length - 1]! >> 4 === 0x0f ? -v : v;
}

export function bcdString(b: Uint8Array): string {
  let s = "";
  for (let i = b.length - 1; i >= 0; i--) s += b[i]!.toString(16).padStart(2, "0");
  return s.toUpperCase();
}

export function manufacturerCode(m: number): string {
  return String.fromCharCode(((m >> 10) & 0x1f) + 64, ((m >> 5) & 0x1f) + 64, (m & 0x1f) + 64);
}

export function manufacturerNumber(code: string): number {
  const c = code.toUpperCase();
  if (!/^[A-Z]{3}$/.test(c))
    throw new EdgeError(
      ErrorCode.DriverConfig,
      `manufacturer "${code}" is not a 3-letter FLAG code`,
    );
  return ((c.charCodeAt(0) - 64) << 10) | ((c.charCodeAt(1) - 64) << 5) | (c.charCodeAt(2) - 64);
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Type G date (2 bytes) → "YYYY-MM-DD". */
export function dateG(b: Uint8Array): string {
  const day = b[0]! & 0x1f;
  const month = b[1]! & 0x0f;
  const year = fullYear(((b[0]! & 0xe0) >> 5) | ((b[1]! & 0xf0) >> 1));
  return `${year}-${pad(month)}-${pad(day)}`;
}

/**
 * Two-digit years: 81–127 are 1981–2027 and 0–80 are 2000–2080, the window libmbus uses (the
 * hundred-year bits of EN 13757-3:2018 type F are not sent by the meters of its corpus).
 */
function fullYear(y: number): number {
  return y < 81 ? 2000 + y : 1900 + y;
}

/** Type F (4 bytes, minute resolution) or type I (6 bytes, with seconds) → "YYYY-MM-DDThh:mm:ss". */
export function dateTime(b: Uint8Array): string {
  const o = b.length === 6 ? 1 : 0;
  // IV bit (bit 7 of the minute byte): the meter says its clock value is invalid.
  if (b[o]! & 0x80) throw new Error("the meter flags this date/time as invalid (IV bit set)");
  const sec = o ? b[0]! & 0x3f : 0;
  const min = b[o]! & 0x3f;
  const hour = b[o + 1]! & 0x1f;
  const day = b[o + 2]! & 0x1f;
  const month = b[o + 3]! & 0x0f;
  const year = fullYear(((b[o + 2]! & 0xe0) >> 5) | ((b[o + 3]! & 0xf0) >> 1));
  return `${year}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(min)}:${pad(sec)}`;
}

/**
 * CI 76h/77h ("mode 2", EN 13757-3:2018 §5 and table 2): every multi-byte field is sent most
 * significant byte first. Reversing a record's data bytes gives the least-significant-first
 * layout the decoders below read, so one decoder serves both modes.
 */
export function lsbFirst(data: Buffer, msbFirst: boolean): Buffer {
  return msbFirst ? Buffer.from(data).reverse() : data;
}
