/**
 * `eclor-edge sim mbus`: simulated wired M-Bus meters answering SND_NKE, REQ_UD2 (with FCB and
 * multi-telegram answers) and secondary selection on a serial port.
 */
import type { Command } from "commander";
import { fail, usage } from "./output.js";

interface MbusOpts {
  serial: string;
  baud: string;
  meter: string[];
  corruptEvery?: string;
  silent?: string;
  builtin: boolean;
}

export function registerSimMbusCommand(sim: Command): void {
  sim
    .command("mbus")
    .description(
      "Simulated M-Bus meters: answer SND_NKE/REQ_UD2 and secondary selection on a serial port",
    )
    .requiredOption("--serial <path>", "serial port, e.g. one end of a socat pty pair")
    .option("--baud <n>", "line speed (8E1)", "2400")
    .option(
      "--meter <ADDR=FILE.hex>",
      "serve these frames at primary address ADDR (repeatable; several files, comma-separated, form a multi-telegram answer); CI 72h, 76h (MSB first), 78h (no header) or 70h (application error)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(
      "--no-builtin",
      "leave out the built-in meters: heat meter at 1 (id 12345678, two telegrams), water meter at 2 (id 87654321)",
    )
    .option("--corrupt-every <n>", "corrupt the checksum of every nth answer")
    .option("--silent <addrs>", "comma-separated addresses that never answer")
    .addHelpText(
      "after",
      "\nExample:\n  eclor-edge sim mbus --serial /tmp/mbus-a --meter 5=drivers/mbus/testcases/libmbus/EDC.hex\n",
    )
    .action(async (opts: MbusOpts) => {
      try {
        const baud = Number(opts.baud);
        if (![300, 600, 1200, 2400, 4800, 9600, 19200, 38400].includes(baud))
          throw usage(
            `--baud: expected 300, 600, 1200, 2400, 4800, 9600, 19200 or 38400, got "${opts.baud}"`,
          );
        let corruptEvery: number | undefined;
        if (opts.corruptEvery !== undefined) {
          if (!/^\d+$/.test(opts.corruptEvery) || Number(opts.corruptEvery) < 1)
            throw usage(
              `--corrupt-every: expected a whole number >= 1, got "${opts.corruptEvery}"`,
            );
          corruptEvery = Number(opts.corruptEvery);
        }
        let silent: number[] | undefined;
        if (opts.silent !== undefined) {
          silent = opts.silent.split(",").map((s) => {
            if (!/^\d+$/.test(s) || Number(s) > 250)
              throw usage(
                `--silent: expected addresses 0..250 separated by commas, got "${opts.silent}"`,
              );
            return Number(s);
          });
        }
        const { runMbusSim } = await import("../../sim/mbus/run.js");
        const log = {
          info: (m: string) => process.stderr.write(`sim mbus: ${m}\n`),
          warn: (m: string) => process.stderr.write(`sim mbus: ${m}\n`),
        };
        const run = runMbusSim({
          serial: opts.serial,
          baud,
          meters: opts.meter,
          builtin: opts.builtin,
          ...(corruptEvery ? { corruptEvery } : {}),
          ...(silent ? { silent } : {}),
          logger: log,
        });
        for (const m of run.meters)
          process.stderr.write(
            `sim mbus: meter at address ${m.address}, id ${m.id || "none (no header)"}\n`,
          );
        await new Promise<void>((resolve) => {
          const stop = () => void run.stop().then(resolve);
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
        process.stderr.write(
          `sim mbus: ${run.slave.stats.responses} answers to ${run.slave.stats.requests} requests\n`,
        );
      } catch (e) {
        fail(e);
      }
    });
}
