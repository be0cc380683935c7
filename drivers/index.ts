/**
 * Driver factories, registered explicitly in one place (model: Telegraf plugins/inputs/all).
 * The config block of each kind is registered in drivers/schemas.ts.
 */
import type { DriverConfig } from "./schemas.js";
import type { Driver, DriverContext } from "./driver.js";

type Factory = (config: DriverConfig, ctx: DriverContext) => Promise<Driver>;

/** Factories load their implementation lazily so the CLI starts fast. */
export const driverFactories: Record<DriverConfig["driver"], Factory> = {
  modbus: async (config, ctx) => {
    const { createModbusDriver } = await import("./modbus/index.js");
    return createModbusDriver(config as Extract<DriverConfig, { driver: "modbus" }>, ctx);
  },
  tic: async (config, ctx) => {
    const { createTicDriver } = await import("./tic/index.js");
    return createTicDriver(config as Extract<DriverConfig, { driver: "tic" }>, ctx);
  },
  mbus: async (config, ctx) => {
    const { createMbusDriver } = await import("./mbus/index.js");
    return createMbusDriver(config as Extract<DriverConfig, { driver: "mbus" }>, ctx);
  },
  lorawan: async (config, ctx) => {
    const { createLorawanDriver } = await import("./lorawan/index.js");
    return createLorawanDriver(config as Extract<DriverConfig, { driver: "lorawan" }>, ctx);
  },
};

export function createDriver(config: DriverConfig, ctx: DriverContext): Promise<Driver> {
  return driverFactories[config.driver](config, ctx);
}
