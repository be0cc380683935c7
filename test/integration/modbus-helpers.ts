/** Shared helpers of the Modbus integration tests: a recording driver context, config parsing. */
import { pino } from "pino";
import type { DriverContext, DriverEvent, Reading } from "../../drivers/driver.js";
import { modbusDriverSchema, type ModbusDriverConfig } from "../../drivers/modbus/schema.js";

export interface Recorder {
  ctx: DriverContext;
  readings: Reading[];
  events: DriverEvent[];
  /** Latest reading of a point. */
  last(device: string, point: string): Reading | undefined;
}

export function recorder(): Recorder {
  const readings: Reading[] = [];
  const events: DriverEvent[] = [];
  const kv = new Map<string, unknown>();
  return {
    readings,
    events,
    last: (device, point) => readings.findLast((r) => r.device === device && r.point === point),
    ctx: {
      logger: pino({ level: process.env.TEST_LOG ?? "silent" }),
      emit: (r) => void readings.push(...r),
      event: (e) => void events.push(e),
      state: {
        get: <T>(k: string) => kv.get(k) as T | undefined,
        set: (k, v) => void kv.set(k, v),
        delete: (k) => void kv.delete(k),
        keys: (p = "") => [...kv.keys()].filter((k) => k.startsWith(p)),
      },
    },
  };
}

export function driverConfig(raw: Record<string, unknown>): ModbusDriverConfig {
  return modbusDriverSchema.parse({ id: "bus", driver: "modbus", ...raw });
}
