/**
 * `eclor-edge logs`: the agent's recent log lines (kept in memory by the agent), pretty-printed
 * with pino-pretty like `journalctl -u eclor-edge -o cat | pino-pretty`; `-f` follows.
 */
import type { Command } from "commander";
import type { LogEntry } from "../control/logring.js";
import { type AgentOptions, withAgent, withAgentOptions } from "./agent-conn.js";
import { fail, usage, useColor } from "./output.js";

interface LogsOptions extends AgentOptions {
  lines: string;
  follow?: boolean;
}

export async function makePrettifier(color: boolean): Promise<(line: string) => string> {
  const { prettyFactory } = await import("pino-pretty");
  const pretty = prettyFactory({
    colorize: color,
    translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l",
    ignore: "pid,hostname",
    singleLine: true,
  });
  return (line) => {
    try {
      // pino-pretty passes a line that is not JSON through unchanged.
      return pretty(line).replace(/\n$/, "");
    } catch {
      return line;
    }
  };
}

export function registerLogsCommand(program: Command): void {
  withAgentOptions(
    program
      .command("logs")
      .description(
        "Recent log lines of the running agent, pretty-printed (journald keeps the full history)",
      )
      .option("-n, --lines <n>", "how many recent lines", "100")
      .option("-f, --follow", "keep printing new lines (Ctrl-C to stop)")
      .option("--json", "print the raw JSON lines (one per line)"),
  ).action(async (opts: LogsOptions) => {
    try {
      const lines = Number(opts.lines);
      if (!Number.isSafeInteger(lines) || lines < 0)
        throw usage(`--lines: expected an integer >= 0, got "${opts.lines}"`);
      const pretty = opts.json ? (l: string) => l : await makePrettifier(useColor());
      await withAgent(opts, async (c) => {
        const s = c.stream<LogEntry>("logs", { lines, follow: Boolean(opts.follow) }, (e) => {
          process.stdout.write(`${pretty(e.line)}\n`);
        });
        if (!opts.follow) {
          await s.done;
          return;
        }
        await new Promise<void>((resolve, reject) => {
          s.done.then(() => resolve(), reject);
          process.once("SIGINT", () => resolve());
          process.once("SIGTERM", () => resolve());
        });
        await s.cancel().catch(() => undefined);
      });
    } catch (e) {
      fail(e, opts.json);
    }
  });
}
