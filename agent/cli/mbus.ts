/**
 * `eclor-edge mbus scan`: find the meters on a wired M-Bus line, by primary address (SND_NKE to
 * each address) or by secondary address (wildcard search on the identification number), for
 * commissioning. Refuses when the running agent owns the line (two masters garble the bus).
 */
import type { Command } from "commander";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type AgentOptions, withAgentOptions } from "./agent-conn.js";
import { describeBus, findOwner } from "./bus-owner.js";
import { fail, printJson, usage } from "./output.js";

interface ScanOpts extends AgentOptions {
  serial?: string;
  baud: string;
  secondary?: boolean;
  from: string;
  to: string;
  timeout: string;
  json?: boolean;
}

const bauds = [300, 600, 1200, 2400, 4800, 9600, 19200, 38400];

function intOpt(flag: string, s: string, min: number, max: number): number {
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max)
    throw usage(`${flag}: expected a whole number ${min}..${max}, got "${s}"`);
  return Number(s);
}

export function registerMbusCommands(program: Command): void {
  const mbus = program.command("mbus").description("Wired M-Bus commissioning tools (EN 13757)");
  withAgentOptions(
    mbus
      .command("scan")
      .description("Find the meters on an M-Bus line by primary or secondary address")
      .argument("[port]", "serial device of the M-Bus level converter (or --serial)")
      .option("--serial <path>", "serial device of the M-Bus level converter")
      .option("--baud <n>", "line speed (8E1)", "2400")
      .option(
        "--secondary",
        "secondary-address search (wildcards on the identification number) instead of primary addresses",
      )
      .option("--from <n>", "first primary address", "0")
      .option("--to <n>", "last primary address", "250")
      .option("--timeout <ms>", "answer timeout per request in ms", "500")
      .option("--json", "machine-readable output"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  eclor-edge mbus scan /dev/ttyUSB0\n  eclor-edge mbus scan /dev/ttyUSB0 --secondary --json\n",
    )
    .action(async (portArg: string | undefined, opts: ScanOpts) => {
      try {
        const path = portArg ?? opts.serial;
        if (!path)
          throw usage("give the serial port: eclor-edge mbus scan /dev/ttyUSB0 (or --serial PATH)");
        if (portArg && opts.serial && portArg !== opts.serial)
          throw usage(`two different ports given: ${portArg} and --serial ${opts.serial}`);
        const baud = Number(opts.baud);
        if (!bauds.includes(baud))
          throw usage(`--baud: expected ${bauds.join(", ")}, got "${opts.baud}"`);
        const from = intOpt("--from", opts.from, 0, 250);
        const to = intOpt("--to", opts.to, from, 250);
        const timeoutMs = intOpt("--timeout", opts.timeout, 50, 10_000);
        const owner = await findOwner(opts, { path });
        if (owner) {
          owner.client.close();
          throw new EdgeError(
            ErrorCode.BusOwnedByAgent,
            `the agent owns ${describeBus(owner.bus)}: stop the agent to scan the line, or read its meters with \`eclor-edge read DEVICE\``,
            { ...owner.bus },
          );
        }
        const { nodeSerialFactory } = await import("../../drivers/serial/port.js");
        const { MbusMaster } = await import("../../drivers/mbus/master.js");
        let port;
        try {
          port = await nodeSerialFactory({
            path,
            baudRate: baud,
            dataBits: 8,
            parity: "even",
            stopBits: 1,
          });
        } catch (e) {
          throw new EdgeError(
            ErrorCode.PortUnavailable,
            `cannot open ${path}: ${(e as Error).message}`,
          );
        }
        const master = new MbusMaster((b) => port.write(b), { timeoutMs, retries: 0 });
        port.onData((c) => master.onData(c));
        const progress = (s: string) => {
          if (!opts.json && process.stderr.isTTY) process.stderr.write(`\rscanning ${s}   `);
        };
        try {
          const found = opts.secondary
            ? (await master.scanSecondary(progress)).map((f) => ({
                secondary: f.id,
                ...summary(f.data),
                ...(f.error ? { error: f.error } : {}),
              }))
            : (await master.scanPrimary(from, to, (a) => progress(String(a)))).map((f) => ({
                address: f.address,
                ...summary(f.data),
                ...(f.error ? { error: f.error } : {}),
              }));
          if (!opts.json && process.stderr.isTTY) process.stderr.write("\r\u001b[K");
          if (opts.json) printJson({ ok: true, meters: found });
          else if (found.length === 0) process.stdout.write("no meter answered\n");
          else
            for (const m of found)
              process.stdout.write(
                `${"address" in m ? `address ${m.address}` : `secondary ${m.secondary}`}: ${m.error ? `error: ${m.error}` : `${m.manufacturer} ${m.id} ${m.medium}, version ${m.version}, ${m.records} records`}\n`,
              );
        } finally {
          await port.close();
        }
      } catch (e) {
        fail(e, opts.json);
      }
    });
}

function summary(d: import("../../drivers/mbus/data.js").MbusData | undefined) {
  if (!d) return {};
  return {
    id: d.header.id,
    manufacturer: d.header.manufacturer,
    medium: d.header.mediumName,
    version: d.header.version,
    records: d.records.length,
  };
}
