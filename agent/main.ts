#!/usr/bin/env node
/**
 * The `eclor-edge` binary. Subcommands are registered by small modules in agent/cli/ and load
 * their heavy dependencies (SQLite, MQTT, serial) lazily, so `--version` and `--help` start fast.
 * Exit codes: 0 ok, 1 runtime failure, 2 bad input.
 */
import { Command, CommanderError } from "commander";
import { registerCommands } from "./cli/commands.js";
import { VERSION } from "./version.js";

const program = new Command("eclor-edge")
  .description("Edge gateway agent: Modbus, LoRaWAN, Linky TIC and M-Bus → SQLite → MQTT")
  .version(VERSION, "-V, --version", "print the version")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version exit 0; every usage error is bad input (2).
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
  throw e;
}
