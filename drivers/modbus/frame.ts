/**
 * Modbus frames, built and checked by the driver itself (no client library between the bus and
 * the checks): requests for FC 1–6, 15, 16; answers validated whole before any value is used.
 *
 *   - Modbus Application Protocol V1.1b3 §6 (PDUs, byte counts, echoes of writes), §7 (exceptions);
 *   - Modbus Messaging on TCP/IP V1.0b §3.1.3 (MBAP: transaction id, protocol id 0, length);
 *   - Modbus over Serial Line V1.02 §2.5.1 (RTU: address + PDU + CRC-16, low byte first).
 *
 * A check that fails gives a ModbusError("frame_error") saying what was wrong; the caller
 * refuses the whole answer (no "good first registers" of a short answer).
 */
import { exceptionDetail, ModbusError } from "./errors.js";

export type Op =
  | { fc: 1 | 2 | 3 | 4; unit: number; address: number; count: number }
  | { fc: 5; unit: number; address: number; value: boolean }
  | { fc: 6; unit: number; address: number; value: number }
  | { fc: 15; unit: number; address: number; values: boolean[] }
  | { fc: 16; unit: number; address: number; values: number[] };

export type OpResult = { bits?: boolean[]; registers?: number[] };

/** MBAP header length (transaction id, protocol id, length, unit id). */
export const MBAP = 7;

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC-16/MODBUS of buf[from, to) (Modbus over Serial Line §6.2.2). */
export function crc16(buf: Uint8Array, from: number, to: number): number {
  let crc = 0xffff;
  for (let i = from; i < to; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ buf[i]!) & 0xff]!;
  return crc;
}

/** Length of the request PDU of an op. */
function pduLength(op: Op): number {
  if (op.fc === 15) return 6 + Math.ceil(op.values.length / 8);
  if (op.fc === 16) return 6 + 2 * op.values.length;
  return 5;
}

/** Write the request PDU of `op` into `out` at `at`. */
function writePdu(op: Op, out: Buffer, at: number): void {
  out[at] = op.fc;
  out.writeUInt16BE(op.address, at + 1);
  switch (op.fc) {
    case 1:
    case 2:
    case 3:
    case 4:
      out.writeUInt16BE(op.count, at + 3);
      return;
    case 5:
      out.writeUInt16BE(op.value ? 0xff00 : 0x0000, at + 3);
      return;
    case 6:
      out.writeUInt16BE(op.value & 0xffff, at + 3);
      return;
    case 15: {
      const n = op.values.length;
      const bytes = Math.ceil(n / 8);
      out.writeUInt16BE(n, at + 3);
      out[at + 5] = bytes;
      out.fill(0, at + 6, at + 6 + bytes);
      for (let i = 0; i < n; i++) if (op.values[i]) out[at + 6 + (i >> 3)]! |= 1 << (i & 7);
      return;
    }
    case 16: {
      const n = op.values.length;
      out.writeUInt16BE(n, at + 3);
      out[at + 5] = 2 * n;
      for (let i = 0; i < n; i++) out.writeUInt16BE(op.values[i]! & 0xffff, at + 6 + 2 * i);
      return;
    }
  }
}

/** A Modbus TCP request ADU. */
export function tcpRequest(tid: number, op: Op): Buffer {
  const n = pduLength(op);
  const out = Buffer.allocUnsafe(MBAP + n);
  out.writeUInt16BE(tid, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE(n + 1, 4);
  out[6] = op.unit;
  writePdu(op, out, MBAP);
  return out;
}

/** A Modbus RTU request frame (unit, PDU, CRC low byte first). */
export function rtuRequest(op: Op): Buffer {
  const n = pduLength(op);
  const out = Buffer.allocUnsafe(n + 3);
  out[0] = op.unit;
  writePdu(op, out, 1);
  out.writeUInt16LE(crc16(out, 0, n + 1), n + 1);
  return out;
}

/**
 * Length of the answer PDU that starts at buf[at] (its function code), once enough of it has
 * arrived to tell; undefined while it cannot be told yet. -1: not an answer to `fc` at all.
 */
export function answerPduLength(fc: number, buf: Uint8Array, at: number, end: number): number {
  if (end - at < 1) return 0;
  const code = buf[at]!;
  if (code === (fc | 0x80)) return 2;
  if (code !== fc) return -1;
  if (fc <= 4) return end - at < 2 ? 0 : 2 + buf[at + 1]!;
  return 5;
}

const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

/**
 * Check an answer PDU (buf[at, end)) against the request and decode it. Everything is checked:
 * function code, exception, byte count against what was asked, the length of the PDU against
 * the byte count, the echo of a write.
 */
export function checkAnswer(op: Op, buf: Buffer, at: number, end: number): OpResult {
  const n = end - at;
  if (n < 2) throw new ModbusError("frame_error", `malformed answer: ${n} byte PDU`);
  const code = buf[at]!;
  if (code === (op.fc | 0x80)) {
    if (n !== 2)
      throw new ModbusError("frame_error", `malformed exception answer: ${n} bytes, expected 2`);
    const ex = buf[at + 1]!;
    throw new ModbusError("exception", exceptionDetail(ex), ex);
  }
  if (code !== op.fc)
    throw new ModbusError(
      "frame_error",
      `answer with function code ${hex(code)} to a request with ${hex(op.fc)}`,
    );
  switch (op.fc) {
    case 1:
    case 2: {
      const want = Math.ceil(op.count / 8);
      const bc = buf[at + 1]!;
      if (bc !== want)
        throw new ModbusError(
          "frame_error",
          `answer byte count ${bc} for ${op.count} bits, expected ${want}`,
        );
      if (n !== 2 + bc)
        throw new ModbusError("frame_error", `answer of ${n - 2} data bytes, byte count ${bc}`);
      const bits = new Array<boolean>(op.count);
      for (let i = 0; i < op.count; i++) bits[i] = ((buf[at + 2 + (i >> 3)]! >> (i & 7)) & 1) === 1;
      return { bits };
    }
    case 3:
    case 4: {
      const want = 2 * op.count;
      const bc = buf[at + 1]!;
      if (bc !== want)
        throw new ModbusError(
          "frame_error",
          `answer byte count ${bc} for ${op.count} registers, expected ${want}`,
        );
      if (n !== 2 + bc)
        throw new ModbusError("frame_error", `answer of ${n - 2} data bytes, byte count ${bc}`);
      const registers = new Array<number>(op.count);
      for (let i = 0, p = at + 2; i < op.count; i++, p += 2)
        registers[i] = (buf[p]! << 8) | buf[p + 1]!;
      return { registers };
    }
    case 5:
    case 6:
    case 15:
    case 16: {
      if (n !== 5) throw new ModbusError("frame_error", `write answer of ${n} bytes, expected 5`);
      const address = buf.readUInt16BE(at + 1);
      const second = buf.readUInt16BE(at + 3);
      const wantSecond =
        op.fc === 5 ? (op.value ? 0xff00 : 0) : op.fc === 6 ? op.value & 0xffff : op.values.length;
      if (address !== op.address || second !== wantSecond)
        throw new ModbusError(
          "frame_error",
          `write answer echoes ${address}/${second}, expected ${op.address}/${wantSecond}`,
        );
      return {};
    }
  }
}
