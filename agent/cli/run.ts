/** `eclor-edge run --config FILE`: the daemon. */
import type { Command } from "commander";
import { DEFAULT_CONFIG_PATH } from "../paths.js";
import { fail } from "./output.js";

export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description("Run the gateway agent (the daemon) with a configuration file")
    .option("-c, --config <file>", "YAML configuration file", DEFAULT_CONFIG_PATH)
    .action(async (opts: { config: string }) => {
      try {
        const { loadConfigFile } = await import("../../config/load.js");
        const config = loadConfigFile(opts.config);
        const { runAgent } = await import("../daemon.js");
        await runAgent(config, { configPath: opts.config });
      } catch (e) {
        fail(e);
      }
    });
}
