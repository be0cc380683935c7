/**
 * The technician's commands (issue 8), registered together so commands.ts needs one line:
 * agent-backed commands (status, devices, read, write, tail, buffer, logs), bash completion, and
 * direct commissioning tools (serial, modbus, tic, mbus) for buses the agent does not own.
 */
import type { Command } from "commander";
import { registerBufferCommands } from "./buffer.js";
import { registerCompletionCommands } from "./completion.js";
import { registerDeviceCommands } from "./devices.js";
import { registerLogsCommand } from "./logs.js";
import { registerModbusCommands } from "./modbus.js";
import { registerSerialCommands } from "./serial.js";
import { registerStatusCommand } from "./status.js";
import { registerTailCommand } from "./tail.js";
import { registerTicCommands } from "./tic.js";

export function registerTechnicianCommands(program: Command): void {
  registerStatusCommand(program);
  registerDeviceCommands(program);
  registerTailCommand(program);
  registerBufferCommands(program);
  registerLogsCommand(program);
  registerSerialCommands(program);
  registerModbusCommands(program);
  registerTicCommands(program);
  registerCompletionCommands(program);
}
