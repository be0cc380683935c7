/**
 * `eclor-edge sim tic`: a simulated Linky/CBE meter streaming TIC frames on a serial port
 * (one end of a socat pty pair in tests and demos, or a real UART with a TIC level adapter).
 */
import type { Command } from "commander";
import { fail, usage } from "./output.js";

interface TicOpts {
  serial: string;
  mode: string;
  interval: string;
  meterId?: string;
  count?: string;
  corruptEvery?: string;
  abortEvery?: string;
}

function positiveInt(flag: string, s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < 1)
    throw usage(`${flag}: expected a whole number >= 1, got "${s}"`);
  return Number(s);
}

export function registerSimTicCommand(sim: Command): void {
  sim
    .command("tic")
    .description(
      "Simulated Linky/CBE meter: stream TIC frames with growing indexes on a serial port",
    )
    .requiredOption(
      "--serial <path>",
      "serial port to write to, e.g. one end of `socat pty,link=/tmp/a pty,link=/tmp/b`",
    )
    .option("--mode <mode>", "historic (1200 7E1) or standard (9600 7E1)", "historic")
    .option("--interval <duration>", 'time between frames, e.g. "1s", "500ms"', "1s")
    .option("--meter-id <digits>", "meter address sent as ADCO/ADSC (12 digits)")
    .option("--count <n>", "stop after n frames (default: run until interrupted)")
    .option("--corrupt-every <n>", "flip a bit in every nth frame (tests checksum handling)")
    .option("--abort-every <n>", "cut every nth frame with EOT")
    .addHelpText(
      "after",
      "\nExample:\n  eclor-edge sim tic --serial /tmp/tic-a --mode standard --interval 1s\n",
    )
    .action(async (opts: TicOpts) => {
      try {
        if (opts.mode !== "historic" && opts.mode !== "standard")
          throw usage(`--mode: expected historic or standard, got "${opts.mode}"`);
        if (opts.meterId !== undefined && !/^\d{12}$/.test(opts.meterId))
          throw usage(`--meter-id: expected 12 digits, got "${opts.meterId}"`);
        const { duration } = await import("../../config/common.js");
        const iv = duration.safeParse(opts.interval);
        if (!iv.success || iv.data < 10)
          throw usage(
            `--interval: expected a duration of at least 10ms like "1s" or "500ms", got "${opts.interval}"`,
          );
        const count = positiveInt("--count", opts.count);
        const corruptEvery = positiveInt("--corrupt-every", opts.corruptEvery);
        const abortEvery = positiveInt("--abort-every", opts.abortEvery);
        const { runTicSim } = await import("../../sim/tic/run.js");
        const log = {
          info: (m: string) => process.stderr.write(`sim tic: ${m}\n`),
          warn: (m: string) => process.stderr.write(`sim tic: ${m}\n`),
        };
        const run = runTicSim({
          serial: opts.serial,
          mode: opts.mode,
          intervalMs: iv.data,
          ...(opts.meterId ? { meterId: opts.meterId } : {}),
          ...(count ? { count } : {}),
          ...(corruptEvery ? { corruptEvery } : {}),
          ...(abortEvery ? { abortEvery } : {}),
          logger: log,
        });
        const stop = () => void run.stop();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        await run.done;
        process.stderr.write(`sim tic: ${run.sent()} frames sent\n`);
      } catch (e) {
        fail(e);
      }
    });
}
