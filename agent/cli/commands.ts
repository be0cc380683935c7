/**
 * Every subcommand group, registered explicitly in one place. Each module adds its commands to
 * the program and imports its heavy dependencies lazily inside the action.
 */
import type { Command } from "commander";
import { registerConfigCommands } from "./config.js";
import { registerLightingCommands } from "./lighting.js";
import { registerMbusCommands } from "./mbus.js";
import { registerProvisionCommand } from "./provision.js";
import { registerRunCommand } from "./run.js";
import { registerSimCommands } from "./sim.js";
import { registerTechnicianCommands } from "./technician.js";

export function registerCommands(program: Command): void {
  registerRunCommand(program);
  registerProvisionCommand(program);
  registerConfigCommands(program);
  registerTechnicianCommands(program);
  registerSimCommands(program);
  registerMbusCommands(program);
  registerLightingCommands(program);
}
