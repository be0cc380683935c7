/**
 * Every subcommand group, registered explicitly in one place. Each module adds its commands to
 * the program and imports its heavy dependencies lazily inside the action.
 */
import type { Command } from "commander";
import { registerConfigCommands } from "./config.js";
import { registerRunCommand } from "./run.js";

export function registerCommands(program: Command): void {
  registerRunCommand(program);
  registerConfigCommands(program);
}
