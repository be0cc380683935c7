/**
 * `eclor-edge sim …`: device simulators for demos, tests and benchmarks. Each simulator adds its
 * subcommand from its own module (sim-<name>.ts), registered here.
 */
import type { Command } from "commander";
import { registerSimEnrollCommands } from "./sim-enroll.js";
import { registerSimLorawanCommand } from "./sim-lorawan.js";
import { registerSimModbusCommand } from "./sim-modbus.js";
import { registerSimMbusCommand } from "./sim-mbus.js";
import { registerSimTicCommand } from "./sim-tic.js";

export function registerSimCommands(program: Command): void {
  const sim = program
    .command("sim")
    .description(
      "Run device simulators (Modbus slave, TIC and M-Bus meters, enrolment service…) for demos and tests",
    );
  registerSimModbusCommand(sim);
  registerSimTicCommand(sim);
  registerSimMbusCommand(sim);
  registerSimLorawanCommand(sim);
  registerSimEnrollCommands(sim);
}
