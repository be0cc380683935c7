/**
 * The config block of every driver kind, registered explicitly in one place (model: Telegraf
 * plugins/inputs/all). A new driver adds its schema here and its factory in drivers/index.ts;
 * the core schema in config/schema.ts needs no change.
 *
 * Each schema is a strict zod object whose `driver` field is a literal (the discriminator).
 */
import type { z } from "zod";
import { lorawanDriverSchema } from "./lorawan/schema.js";
import { mbusDriverSchema } from "./mbus/schema.js";
import { modbusDriverSchema } from "./modbus/schema.js";
import { ticDriverSchema } from "./tic/schema.js";

export const driverSchemas = [
  modbusDriverSchema,
  ticDriverSchema,
  mbusDriverSchema,
  lorawanDriverSchema,
] as const;

/** One driver's validated config block (the union of every kind's schema output). */
export type DriverConfig = z.output<(typeof driverSchemas)[number]>;
