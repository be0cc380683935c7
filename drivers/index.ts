/**
 * Driver factories, registered explicitly in one place (model: Telegraf plugins/inputs/all).
 * The config block of each kind is registered in drivers/schemas.ts.
 */
import type { DriverConfig } from "../config/schema.js";
import type { Driver, DriverContext } from "./driver.js";

type Factory = (config: DriverConfig, ctx: DriverContext) => Promise<Driver>;

/** Factories load their implementation lazily so the CLI starts fast. */
export const driverFactories: Record<DriverConfig["driver"], Factory> = {
  modbus: async (config, ctx) => {
    const { createModbusDriver } = await import("./modbus/index.js");
    return createModbusDriver(config as Extract<DriverConfig, { driver: "modbus" }>, ctx);
  },
};

export function createDriver(config: DriverConfig, ctx: DriverContext): Promise<Driver> {
  return driverFactories[config.driver](config, ctx);
}
