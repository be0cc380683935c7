/**
 * Failed Modbus transactions, classified as the quality a reading will carry. modbus-serial
 * reports failures as assorted Error objects (a `modbusCode` for exceptions, named timeout
 * errors, messages for CRC and length problems): they are mapped here, in one place.
 */
import type { Quality } from "../driver.js";

const exceptionNames: Record<number, string> = {
  1: "illegal function",
  2: "illegal data address",
  3: "illegal data value",
  4: "server device failure",
  5: "acknowledge",
  6: "server device busy",
  8: "memory parity error",
  10: "gateway path unavailable",
  11: "gateway target device failed to respond",
};

/** A failed transaction, classified as the quality a reading will carry. */
export class ModbusError extends Error {
  constructor(
    readonly quality: Exclude<Quality, "good" | "uncertain" | "codec_error" | "offline">,
    message: string,
    readonly exceptionCode?: number,
  ) {
    super(message);
  }
  /** Transient failures worth a retry; an exception is a definite answer. */
  get retryable(): boolean {
    return this.quality === "timeout" || this.quality === "frame_error";
  }
}

export function exceptionDetail(code: number): string {
  return `${exceptionNames[code] ?? "unknown exception"} (exception ${code})`;
}

/** Map modbus-serial's assorted error objects to a quality and plain words. */
export function classify(e: unknown): ModbusError {
  const err = e as { modbusCode?: number; name?: string; errno?: string; message?: string };
  if (typeof err.modbusCode === "number")
    return new ModbusError("exception", exceptionDetail(err.modbusCode), err.modbusCode);
  const msg = err.message ?? String(e);
  if (err.name === "TransactionTimedOutError" || err.errno === "ETIMEDOUT")
    return new ModbusError("timeout", "no answer before the timeout");
  if (/CRC error/.test(msg)) return new ModbusError("frame_error", "CRC error in the answer");
  if (/Data length error|Unexpected data error/.test(msg))
    return new ModbusError("frame_error", `malformed answer: ${msg}`);
  return new ModbusError("comm_error", msg || "communication error");
}
