/**
 * Writes handed over by the command router: value → raw (inverse scale/offset, enum label) →
 * registers in the point's type and order → FC 5/6/15/16, then an optional read-back that turns
 * "the device acknowledged but ignored it" into a failed write instead of a silent no-op.
 *
 * Function codes: a coil is written with FC 5 (FC 15 when the device has `write_multiple`); a
 * one-register value with FC 6 (FC 16 with `write_multiple`, for devices that only implement
 * "write multiple registers"); wider values always with FC 16. A `bit` point is a
 * read-modify-write of its register (FC 3 then FC 6/16).
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type { Value, WriteRequest, WriteResult } from "../driver.js";
import {
  EncodeError,
  decodeRegisters,
  encodeRegisters,
  pointSize,
  scaleValue,
  unscale,
} from "./codec.js";
import type { ModbusDevice } from "./device.js";
import { ModbusError, type Op } from "./link.js";
import type { ModbusPointConfig } from "./schema.js";

function invalid(req: WriteRequest, why: string): EdgeError {
  return new EdgeError(ErrorCode.CommandInvalid, `${req.device}/${req.point}: ${why}`, {
    device: req.device,
    point: req.point,
  });
}

/** The raw value for a write, or an EdgeError naming what is wrong with the value. */
export function rawForWrite(req: WriteRequest, p: ModbusPointConfig): number | string {
  let v: Value = req.value;
  if (typeof v === "string" && p.type !== "string") {
    const label = Object.entries(p.labels ?? {}).find(([, text]) => text === v);
    if (label) v = Number(label[0]);
    else if (v.trim() !== "" && Number.isFinite(Number(v))) v = Number(v);
    else
      throw invalid(
        req,
        `expected a ${p.type === "bool" || p.type === "bit" ? "boolean" : "number"}${p.labels ? ` or one of ${Object.values(p.labels).join(", ")}` : ""}, got "${v}"`,
      );
  }
  if (p.type === "bool" || p.type === "bit") {
    if (typeof v === "boolean") return v ? 1 : 0;
    if (v === 0 || v === 1) return v;
    throw invalid(req, `expected true/false (or 1/0), got ${String(v)}`);
  }
  if (p.type === "string") {
    if (typeof v !== "string") throw invalid(req, `expected a string, got ${String(v)}`);
    return v;
  }
  if (typeof v !== "number" || !Number.isFinite(v))
    throw invalid(req, `expected a finite number, got ${String(v)}`);
  if (p.min !== undefined && v < p.min)
    throw invalid(req, `${v} is below the point's min ${p.min}`);
  if (p.max !== undefined && v > p.max)
    throw invalid(req, `${v} is above the point's max ${p.max}`);
  const raw = unscale(v, p.scale, p.offset, p.type);
  const exact = (v - p.offset) / p.scale;
  // Rounding is for binary-fraction noise (23.7 / 0.1), not for silently changing the value.
  if (!p.type.startsWith("float") && Math.abs(exact - raw) > 1e-6 * Math.max(1, Math.abs(exact)))
    throw invalid(
      req,
      `${v} is not a multiple of the point's scale ${p.scale} (raw ${exact} is not an integer for ${p.type})`,
    );
  return raw;
}

export async function executeWrite(
  dev: ModbusDevice,
  p: ModbusPointConfig,
  req: WriteRequest,
): Promise<WriteResult> {
  if (!p.writable)
    throw new EdgeError(
      ErrorCode.CommandRefused,
      `${req.device}/${req.point} is not writable (set writable: true in the config to allow it)`,
    );
  const raw = rawForWrite(req, p);
  const unit = dev.cfg.unit_id;
  const multiple = dev.cfg.write_multiple;
  const order = p.order ?? dev.order;
  try {
    if (p.table === "coil") {
      const op: Op = multiple
        ? { fc: 15, unit, address: p.address, values: [raw === 1] }
        : { fc: 5, unit, address: p.address, value: raw === 1 };
      await dev.request(op, "high");
    } else {
      let current = 0;
      if (p.type === "bit") {
        const r = await dev.request({ fc: 3, unit, address: p.address, count: 1 }, "high");
        current = r.registers![0]!;
      }
      let regs: number[];
      try {
        regs = encodeRegisters(raw, p, order, current);
      } catch (e) {
        if (e instanceof EncodeError) throw invalid(req, e.message);
        throw e;
      }
      const op: Op =
        regs.length === 1 && !multiple
          ? { fc: 6, unit, address: p.address, value: regs[0]! }
          : { fc: 16, unit, address: p.address, values: regs };
      await dev.request(op, "high");
    }
  } catch (e) {
    if (e instanceof ModbusError)
      return { ok: false, detail: `write failed: ${e.message} (${e.quality})` };
    throw e;
  }
  if (dev.cfg.unit_id === 0 && dev.link.endpoint.type === "rtu")
    return {
      ok: true,
      detail:
        "broadcast to every unit on the line: not acknowledged by design, nothing to read back",
    };
  if (!req.verify) return { ok: true };
  return verify(dev, p, req, raw);
}

async function verify(
  dev: ModbusDevice,
  p: ModbusPointConfig,
  req: WriteRequest,
  raw: number | string,
): Promise<WriteResult> {
  const fc = p.table === "coil" ? 1 : 3;
  let res;
  try {
    res = await dev.request(
      { fc, unit: dev.cfg.unit_id, address: p.address, count: pointSize(p) },
      "high",
    );
  } catch (e) {
    if (e instanceof ModbusError)
      return {
        ok: false,
        readBack: null,
        detail: `written, but the read-back failed: ${e.message}`,
      };
    throw e;
  }
  const back = res.bits
    ? res.bits[0]
      ? 1
      : 0
    : decodeRegisters(res.registers!, p, p.order ?? dev.order);
  const same =
    typeof back === "string" || typeof raw === "string"
      ? back === raw
      : p.type === "float32"
        ? Math.fround(raw) === Math.fround(back)
        : back === raw;
  const readBack: Value =
    typeof back === "string"
      ? back
      : p.type === "bool" || p.type === "bit"
        ? back === 1
        : scaleValue(back, p.scale, p.offset);
  const ts = Date.now();
  dev.emitReadings([
    {
      device: dev.cfg.id,
      point: p.id,
      ts,
      value: readBack,
      ...(p.unit ? { unit: p.unit } : {}),
      quality: "good",
    },
  ]);
  return same
    ? { ok: true, readBack }
    : {
        ok: false,
        readBack,
        detail: `the device acknowledged the write but reads back ${String(readBack)} instead of ${String(req.value)}`,
      };
}
