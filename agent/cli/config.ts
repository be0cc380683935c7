/** `eclor-edge config validate|show|schema`. */
import type { Command } from "commander";
import { z } from "zod";
import { loadConfigFile } from "../../config/load.js";
import { configSchema } from "../../config/schema.js";
import { DEFAULT_CONFIG_PATH } from "../paths.js";
import { fail, green, printJson } from "./output.js";

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, {
    io: "input",
    unrepresentable: "any",
    target: "draft-2020-12",
  });
}

export function registerConfigCommands(program: Command): void {
  const config = program.command("config").description("Check and inspect configuration files");

  config
    .command("validate")
    .description("Validate configuration files; print every problem with its path (exit 2 if any)")
    .argument("[files...]", "YAML config files", [DEFAULT_CONFIG_PATH])
    .option("--json", "machine-readable result")
    .action((files: string[], opts: { json?: boolean }) => {
      const results: { file: string; ok: boolean; problems?: unknown }[] = [];
      let bad: unknown;
      for (const file of files) {
        try {
          const cfg = loadConfigFile(file);
          const devices = cfg.drivers.reduce((n, d) => n + d.devices.length, 0);
          results.push({ file, ok: true });
          if (!opts.json)
            process.stdout.write(
              `${green("ok")} ${file}: gateway ${cfg.gateway.id}, ${cfg.drivers.length} driver(s), ${devices} device(s)\n`,
            );
        } catch (e) {
          bad ??= e;
          const problems = (e as { details?: { problems?: unknown } }).details?.problems;
          results.push({ file, ok: false, problems: problems ?? String(e) });
          if (!opts.json) process.stderr.write(`${(e as Error).message}\n`);
        }
      }
      if (opts.json) printJson({ ok: bad === undefined, files: results });
      if (bad !== undefined) {
        if (opts.json) process.exit((bad as { exitCode?: number }).exitCode ?? 2);
        process.exit((bad as { exitCode?: number }).exitCode ?? 2);
      }
    });

  config
    .command("show")
    .description(
      "Show the configuration in force (local file or remote config/set), why, its versions, and its content with secrets redacted",
    )
    .option("-c, --config <file>", "YAML configuration file", DEFAULT_CONFIG_PATH)
    .option("--json", "machine-readable result")
    .action(async (opts: { config: string; json?: boolean }) => {
      try {
        const { configShow, formatConfigShow } = await import("../commands/show.js");
        const shown = configShow(opts.config);
        if (opts.json) printJson(shown);
        else process.stdout.write(formatConfigShow(shown));
      } catch (e) {
        fail(e, opts.json);
      }
    });

  config
    .command("schema")
    .description(
      "Print the JSON Schema of the config file (for editors with a YAML language server)",
    )
    .action(() => {
      try {
        process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      } catch (e) {
        fail(e);
      }
    });
}
