/**
 * M-Bus link layer (EN 13757-2 / EN 60870-5-2 FT1.2): ACK (E5), short (10 C A CS 16),
 * control and long frames (68 L L 68 C A CI data CS 16). Checksum = arithmetic sum of C..data
 * modulo 256. Pure functions plus a streaming scanner; no I/O here.
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";

export const ACK = 0xe5;
/** Control field values (EN 13757-2 §5.4, master → slave have bit 6 set). */
export const C = {
  SND_NKE: 0x40,
  SND_UD: 0x53,
  REQ_UD2: 0x5b,
  REQ_UD1: 0x5a,
  FCB: 0x20,
  RSP_UD: 0x08,
} as const;
/** CI field values used by the master (EN 13757-3 Table 2). */
export const CI = {
  SELECT_SECONDARY: 0x52,
  VARIABLE_LE: 0x72,
  FIXED: 0x73,
  VARIABLE_BE: 0x76,
} as const;
/** Primary address of the secondary-addressed (selected) slave, and broadcast with/without reply. */
export const ADDR_SELECTED = 0xfd;
export const ADDR_BROADCAST = 0xff;

export type MbusFrame =
  | { kind: "ack" }
  | { kind: "short"; control: number; address: number }
  | { kind: "long"; control: number; address: number; ci: number; data: Buffer };

function sum(buf: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s = (s + buf[i]!) & 0xff;
  return s;
}

export function shortFrame(control: number, address: number): Buffer {
  return Buffer.from([0x10, control, address, (control + address) & 0xff, 0x16]);
}

export function longFrame(
  control: number,
  address: number,
  ci: number,
  data: Uint8Array = Buffer.alloc(0),
): Buffer {
  const len = data.length + 3;
  if (len > 255)
    throw new EdgeError(
      ErrorCode.ProtocolViolation,
      `M-Bus long frame too long: ${data.length} data bytes (max 252)`,
    );
  const out = Buffer.alloc(len + 6);
  out[0] = 0x68;
  out[1] = len;
  out[2] = len;
  out[3] = 0x68;
  out[4] = control;
  out[5] = address;
  out[6] = ci;
  out.set(data, 7);
  out[len + 4] = sum(out, 4, len + 4);
  out[len + 5] = 0x16;
  return out;
}

export function encodeFrame(f: MbusFrame): Buffer {
  if (f.kind === "ack") return Buffer.from([ACK]);
  if (f.kind === "short") return shortFrame(f.control, f.address);
  return longFrame(f.control, f.address, f.ci, f.data);
}

/**
 * Result of looking at the start of a buffer: a complete frame with its byte length, `need`
 * (incomplete, wait for more bytes), or `invalid` (skip `skip` bytes: garbage or a bad frame).
 */
export type ScanResult =
  | { status: "frame"; frame: MbusFrame; length: number }
  | { status: "need" }
  | { status: "invalid"; skip: number; reason: string };

export function scanFrame(buf: Uint8Array): ScanResult {
  if (buf.length === 0) return { status: "need" };
  const b0 = buf[0]!;
  if (b0 === ACK) return { status: "frame", frame: { kind: "ack" }, length: 1 };
  if (b0 === 0x10) {
    if (buf.length < 5) return { status: "need" };
    if (buf[4] !== 0x16)
      return { status: "invalid", skip: 1, reason: "short frame without stop byte 0x16" };
    const cs = (buf[1]! + buf[2]!) & 0xff;
    if (cs !== buf[3])
      return {
        status: "invalid",
        skip: 5,
        reason: `short frame checksum 0x${hex(buf[3]!)} != computed 0x${hex(cs)}`,
      };
    return {
      status: "frame",
      frame: { kind: "short", control: buf[1]!, address: buf[2]! },
      length: 5,
    };
  }
  if (b0 === 0x68) {
    if (buf.length < 4) return { status: "need" };
    const l1 = buf[1]!;
    if (buf[2] !== l1)
      return {
        status: "invalid",
        skip: 1,
        reason: `long frame length fields differ (${l1} != ${buf[2]})`,
      };
    if (buf[3] !== 0x68)
      return { status: "invalid", skip: 1, reason: "long frame without second start byte 0x68" };
    if (l1 < 3)
      return {
        status: "invalid",
        skip: 1,
        reason: `long frame length ${l1} < 3 (C, A and CI are mandatory)`,
      };
    const total = l1 + 6;
    if (buf.length < total) return { status: "need" };
    if (buf[total - 1] !== 0x16)
      return {
        status: "invalid",
        skip: 1,
        reason: `long frame of length ${l1} has no stop byte 0x16 at offset ${total - 1}`,
      };
    const cs = sum(buf, 4, total - 2);
    if (cs !== buf[total - 2])
      return {
        status: "invalid",
        skip: total,
        reason: `long frame checksum 0x${hex(buf[total - 2]!)} != computed 0x${hex(cs)}`,
      };
    return {
      status: "frame",
      frame: {
        kind: "long",
        control: buf[4]!,
        address: buf[5]!,
        ci: buf[6]!,
        data: Buffer.from(buf.subarray(7, total - 2)),
      },
      length: total,
    };
  }
  return { status: "invalid", skip: 1, reason: `unexpected byte 0x${hex(b0)} (not a frame start)` };
}

/**
 * Parse exactly one complete frame (e.g. a corpus .hex). Throws EdgeError DeviceFrame with the
 * reason for a bad checksum, a wrong length, a truncated frame or trailing bytes.
 */
export function parseFrame(buf: Uint8Array): MbusFrame {
  const r = scanFrame(buf);
  if (r.status === "need")
    throw new EdgeError(
      ErrorCode.DeviceFrame,
      `M-Bus frame truncated: ${buf.length} bytes, frame incomplete`,
    );
  if (r.status === "invalid")
    throw new EdgeError(ErrorCode.DeviceFrame, `invalid M-Bus frame: ${r.reason}`);
  if (r.length !== buf.length)
    throw new EdgeError(
      ErrorCode.DeviceFrame,
      `invalid M-Bus frame: ${buf.length - r.length} bytes after the stop byte`,
    );
  return r.frame;
}

/** Bytes from a hex dump like "68 1F 1F 68 …" (whitespace ignored). */
export function hexToBytes(text: string): Buffer {
  const clean = text.replace(/\s+/g, "");
  if (!/^([0-9a-fA-F]{2})*$/.test(clean))
    throw new EdgeError(
      ErrorCode.DeviceFrame,
      "hex text has an odd number of digits or non-hex characters",
    );
  return Buffer.from(clean, "hex");
}

export function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

/** Space-separated upper-case hex, the form used for manufacturer-specific data. */
export function toHex(b: Uint8Array): string {
  return Array.from(b, hex).join(" ");
}
