/**
 * Register ⇄ value encoding for every point type and byte/word order.
 *
 * Orders use the letters Telegraf's users know (plugins/inputs/modbus README, `byte_order`):
 * the value's bytes, most significant first, are A B C D … and the order names how they appear
 * on the wire, register by register:
 *   ABCD  big-endian (the Modbus default, "high word first")
 *   CDAB  word-swapped (low word first, bytes big-endian in each register: many meters/PLCs)
 *   BADC  byte-swapped inside each register, high word first
 *   DCBA  little-endian (fully reversed)
 * The same rule scales to 64-bit values (ABCDEFGH ↔ GHEFCDAB …) and applies the byte swap to
 * 16-bit values (AB ↔ BA). Strings honour the byte swap only: their registers are always read in
 * address order (a word-swapped string is not a thing devices do).
 */
import type { ByteOrder, PointType } from "./schema.js";

export interface CodecPoint {
  type: PointType;
  /** Registers of a string point. */
  length?: number | undefined;
  /** Bit number of a `bit` point. */
  bit?: number | undefined;
}

/** Number of 16-bit registers (or bits, for bool) a point occupies. */
export function pointSize(p: CodecPoint): number {
  switch (p.type) {
    case "bool":
    case "bit":
    case "int16":
    case "uint16":
      return 1;
    case "int32":
    case "uint32":
    case "float32":
      return 2;
    case "int64":
    case "uint64":
    case "float64":
      return 4;
    case "string":
      return p.length ?? 1;
  }
}

const wordSwapped = (o: ByteOrder) => o === "CDAB" || o === "DCBA";
const byteSwapped = (o: ByteOrder) => o === "BADC" || o === "DCBA";

/** Registers (as read, in address order) → big-endian bytes of the value. */
export function registersToBytes(regs: ArrayLike<number>, order: ByteOrder, words = true): Buffer {
  const n = regs.length;
  const out = Buffer.allocUnsafe(n * 2);
  for (let i = 0; i < n; i++) {
    const r = regs[words && wordSwapped(order) ? n - 1 - i : i]! & 0xffff;
    if (byteSwapped(order)) out.writeUInt16LE(r, i * 2);
    else out.writeUInt16BE(r, i * 2);
  }
  return out;
}

/** Big-endian bytes of a value → registers in address order (inverse of registersToBytes). */
export function bytesToRegisters(bytes: Buffer, order: ByteOrder, words = true): number[] {
  const n = bytes.length / 2;
  const regs = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const r = byteSwapped(order) ? bytes.readUInt16LE(i * 2) : bytes.readUInt16BE(i * 2);
    regs[words && wordSwapped(order) ? n - 1 - i : i] = r;
  }
  return regs;
}

// Scratch space for decoding numbers: decoding runs for every point of every poll, and a
// fresh Buffer per value was most of the driver's CPU time in bench/modbus-poll.
const scratch = Buffer.alloc(8);
const swap16 = (r: number) => ((r & 0xff) << 8) | ((r >> 8) & 0xff);

/** Copy `n` registers starting at `at` into `scratch` as the value's big-endian bytes. */
function toScratch(regs: ArrayLike<number>, at: number, n: number, order: ByteOrder): void {
  const ws = wordSwapped(order);
  const bs = byteSwapped(order);
  for (let i = 0; i < n; i++) {
    const r = regs[at + (ws ? n - 1 - i : i)]! & 0xffff;
    scratch.writeUInt16BE(bs ? swap16(r) : r, i * 2);
  }
}

/**
 * Raw value of a register point (before scale/offset), from the registers at `at`. 64-bit
 * integers are returned as numbers: exact up to 2^53, rounded beyond (energy counters never get
 * there).
 */
export function decodeRegisters(
  regs: ArrayLike<number>,
  p: CodecPoint,
  order: ByteOrder,
  at = 0,
): number | string {
  switch (p.type) {
    case "uint16": {
      const r = regs[at]! & 0xffff;
      return byteSwapped(order) ? swap16(r) : r;
    }
    case "int16": {
      const r = regs[at]! & 0xffff;
      const v = byteSwapped(order) ? swap16(r) : r;
      return v >= 0x8000 ? v - 0x10000 : v;
    }
    case "bit":
      return (regs[at]! >> (p.bit ?? 0)) & 1;
    case "bool":
      return regs[at]! ? 1 : 0;
    case "string": {
      const n = p.length ?? 1;
      const b = registersToBytes(
        Array.prototype.slice.call(regs, at, at + n) as number[],
        order,
        false,
      );
      const nul = b.indexOf(0);
      // Devices pad with NUL or spaces; neither is part of the value.
      return b.toString("latin1", 0, nul < 0 ? b.length : nul).replace(/ +$/, "");
    }
    case "int32":
      toScratch(regs, at, 2, order);
      return scratch.readInt32BE(0);
    case "uint32":
      toScratch(regs, at, 2, order);
      return scratch.readUInt32BE(0);
    case "float32":
      toScratch(regs, at, 2, order);
      return shortestFloat32(scratch.readFloatBE(0));
    case "int64":
      toScratch(regs, at, 4, order);
      return Number(scratch.readBigInt64BE(0));
    case "uint64":
      toScratch(regs, at, 4, order);
      return Number(scratch.readBigUInt64BE(0));
    case "float64":
      toScratch(regs, at, 4, order);
      return scratch.readDoubleBE(0);
  }
}

/**
 * The shortest decimal that reads back as the same float32 (what mbpoll and most tools show):
 * 3.14159 for the float32 nearest 3.14159, not its exact double 3.141590118408203. At most 9
 * significant digits are ever needed (IEEE 754 §5.12.2).
 */
export function shortestFloat32(f: number): number {
  if (!Number.isFinite(f) || f === 0 || (Number.isInteger(f) && Math.abs(f) <= 2 ** 24)) return f;
  for (let digits = 6; digits < 9; digits++) {
    const d = Number(f.toPrecision(digits));
    if (Math.fround(d) === f) return shorterBelow(f, d, digits);
  }
  return Number(f.toPrecision(9));
}

/** Values often need fewer than 6 digits (230.5): try those only when 6 already worked. */
function shorterBelow(f: number, d: number, digits: number): number {
  if (digits > 6) return d;
  for (let k = 1; k < 6; k++) {
    const e = Number(f.toPrecision(k));
    if (Math.fround(e) === f) return e;
  }
  return d;
}

const intBounds: Partial<Record<PointType, [number, number]>> = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [-(2 ** 63), 2 ** 63 - 1],
  uint64: [0, 2 ** 64 - 1],
};

const FLOAT32_MAX = 3.4028234663852886e38;
const FLOAT32_MIN = 1.401298464324817e-45;
const intRange = (t: PointType): string =>
  t === "int64"
    ? "-9223372036854775808..9223372036854775807"
    : t === "uint64"
      ? "0..18446744073709551615"
      : `${intBounds[t]![0]}..${intBounds[t]![1]}`;

/** Thrown for a value the point's type cannot hold; the message is for the command's caller. */
export class EncodeError extends Error {}

/**
 * Raw value → registers in address order. `current` is the register's present content, needed
 * for a `bit` point (the other 15 bits are preserved: read-modify-write).
 */
export function encodeRegisters(
  raw: number | string,
  p: CodecPoint,
  order: ByteOrder,
  current = 0,
): number[] {
  if (p.type === "string") {
    if (typeof raw !== "string") throw new EncodeError("expected a string");
    const size = pointSize(p) * 2;
    const bytes = Buffer.alloc(size); // NUL padded
    const written = bytes.write(raw, 0, "latin1");
    if (Buffer.byteLength(raw, "latin1") > size || written < raw.length)
      throw new EncodeError(`string longer than ${size} characters (${p.length ?? 1} registers)`);
    return bytesToRegisters(bytes, order, false);
  }
  if (typeof raw !== "number" || (Number.isNaN(raw) && !p.type.startsWith("float")))
    throw new EncodeError("expected a number");
  if (p.type === "bit" || p.type === "bool") {
    if (raw !== 0 && raw !== 1) throw new EncodeError("expected 0/1 or true/false");
    const bit = p.bit ?? 0;
    return [p.type === "bool" ? raw : raw ? current | (1 << bit) : current & ~(1 << bit) & 0xffff];
  }
  const b = Buffer.alloc(pointSize(p) * 2);
  if (p.type === "float32" || p.type === "float64") {
    // A finite value beyond the type's range would be written as ±Infinity, a tiny one as 0:
    // refuse both. NaN and ±Infinity themselves are float values (writes refuse them upstream).
    const max = p.type === "float32" ? FLOAT32_MAX : Number.MAX_VALUE;
    const stored = p.type === "float32" ? Math.fround(raw) : raw;
    if (Number.isFinite(raw) && !Number.isFinite(stored))
      throw new EncodeError(`${raw} is outside the ${p.type} range ±${max}`);
    if (raw !== 0 && stored === 0)
      throw new EncodeError(
        `${raw} is too small for ${p.type}: it would be written as 0 (smallest ${p.type === "float32" ? FLOAT32_MIN : Number.MIN_VALUE})`,
      );
    if (p.type === "float32") b.writeFloatBE(raw, 0);
    else b.writeDoubleBE(raw, 0);
  } else {
    if (!Number.isInteger(raw))
      throw new EncodeError(`expected an integer for ${p.type}, got ${raw}`);
    const [lo, hi] = intBounds[p.type]!;
    // hi of the 64-bit types (2^63 − 1, 2^64 − 1) rounds up to 2^63, 2^64 as a double:
    // compare with < hi there, or 2^63 would pass and fail inside Buffer.writeBigInt64BE.
    const above = p.type === "int64" || p.type === "uint64" ? raw >= hi : raw > hi;
    if (raw < lo || above)
      throw new EncodeError(`${raw} is outside the ${p.type} range ${intRange(p.type)}`);
    if (!Number.isSafeInteger(raw))
      throw new EncodeError(
        `${raw} is beyond ±2^53: a number this large does not arrive exactly, so it is not written to a ${p.type}`,
      );
    if (p.type === "int16") b.writeInt16BE(raw, 0);
    else if (p.type === "uint16") b.writeUInt16BE(raw, 0);
    else if (p.type === "int32") b.writeInt32BE(raw, 0);
    else if (p.type === "uint32") b.writeUInt32BE(raw, 0);
    else if (p.type === "int64") b.writeBigInt64BE(BigInt(raw), 0);
    else b.writeBigUInt64BE(BigInt(raw), 0);
  }
  return bytesToRegisters(b, order);
}

/** Engineering value → raw (inverse of `raw × scale + offset`), rounded for integer types. */
export function unscale(value: number, scale: number, offset: number, type: PointType): number {
  const raw = (value - offset) / scale;
  if (type.startsWith("float")) return raw;
  // Guard against 0.1-style binary fractions: 23.7 / 0.1 = 236.99999999999997.
  return Math.round(raw);
}

/** Raw → engineering value; integers stay exact when scale is 1 and offset 0. */
export function scaleValue(raw: number, scale: number, offset: number): number {
  if (scale === 1 && offset === 0) return raw;
  // Round to 12 significant digits so 2301 × 0.1 reads 230.1, not 230.10000000000002.
  return Number((raw * scale + offset).toPrecision(12));
}
