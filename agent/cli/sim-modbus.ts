/**
 * `eclor-edge sim modbus`: a fast simulated Modbus slave serving the shipped profiles
 * (an SDM630 meter, a DALI gateway) over TCP, RTU over TCP or a serial line, with faults on
 * demand (at start with --fault, or typed on stdin while it runs).
 */
import type { Command } from "commander";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { dim, fail, green } from "./output.js";

interface Opts {
  listen?: string;
  rtuOverTcp?: string;
  serial?: string;
  baud: string;
  device: string[];
  fault: string[];
  strict?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function bad(message: string): EdgeError {
  return new EdgeError(ErrorCode.SimulatorConfig, message);
}

export function hostPort(flag: string, s: string): { host: string; port: number } {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535)
    throw bad(`${flag}: expected HOST:PORT or PORT (e.g. 127.0.0.1:5020), got "${s}"`);
  return { host: m[1] || "127.0.0.1", port };
}

export function registerSimModbusCommand(sim: Command): void {
  sim
    .command("modbus")
    .description("Simulated Modbus slave: an SDM630 meter and a DALI gateway, with fault injection")
    .option("--listen <host:port>", "serve Modbus TCP here (e.g. 127.0.0.1:5020)")
    .option("--rtu-over-tcp <host:port>", "serve RTU frames over raw TCP (like a serial server)")
    .option("--serial <path>", "serve RTU on this serial port (e.g. one end of a socat pty pair)")
    .option("--baud <n>", "baud rate of --serial", "9600")
    .option(
      "--device <unit:kind>",
      "a simulated device: UNIT:eastron-sdm630|dali-gateway|registers (repeatable; default 1:eastron-sdm630 and 2:dali-gateway)",
      collect,
      [],
    )
    .option(
      "--fault <unit:fault>",
      "start with a fault: UNIT:no_answer|late:MS|exception:CODE|busy|illegal_address|bad_crc|wrong_unit (repeatable)",
      collect,
      [],
    )
    .option("--strict", "answer 'illegal data address' to reads that touch unmapped registers")
    .addHelpText(
      "after",
      `
While it runs, type on stdin:
  fault UNIT KIND     e.g. "fault 1 no_answer", "fault 1 late:1500", "fault 2 exception:6", "fault 1 none"
  status              requests served per unit

Example:
  eclor-edge sim modbus --listen 127.0.0.1:5020 --device 12:eastron-sdm630 --device 3:dali-gateway`,
    )
    .action(async (opts: Opts) => {
      try {
        await runSim(opts);
      } catch (e) {
        fail(e);
      }
    });
}

async function runSim(opts: Opts): Promise<void> {
  const { ModbusSimulator, addSimDevice, parseFault, simDeviceKinds } =
    await import("../../sim/modbus/index.js");
  if (!opts.listen && !opts.rtuOverTcp && !opts.serial)
    throw bad(
      "nothing to serve: give --listen HOST:PORT, --rtu-over-tcp HOST:PORT or --serial PATH",
    );
  const baud = Number(opts.baud);
  if (!Number.isInteger(baud) || baud <= 0)
    throw bad(`--baud: expected a positive integer, got "${opts.baud}"`);
  const devices = (opts.device.length ? opts.device : ["1:eastron-sdm630", "2:dali-gateway"]).map(
    (d) => {
      const [u, kind] = d.split(":");
      const unit = Number(u);
      if (!Number.isInteger(unit) || unit < 1 || unit > 247)
        throw bad(`--device ${d}: expected UNIT:KIND with UNIT 1..247`);
      if (!(simDeviceKinds as readonly string[]).includes(kind ?? ""))
        throw bad(
          `--device ${d}: unknown kind "${kind}", expected one of ${simDeviceKinds.join(", ")}`,
        );
      return { unit, kind: kind as (typeof simDeviceKinds)[number] };
    },
  );
  const sim = new ModbusSimulator();
  for (const d of devices) addSimDevice(sim, d.unit, d.kind, { strict: opts.strict ?? false });
  const setFault = (spec: string, unitText: string, faultText: string) => {
    const unit = Number(unitText);
    if (!sim.units.has(unit))
      throw bad(
        `${spec}: no simulated unit ${unitText} (units: ${[...sim.units.keys()].join(", ")})`,
      );
    try {
      sim.setFault(unit, parseFault(faultText));
    } catch (e) {
      throw bad(`${spec}: ${(e as Error).message}`);
    }
  };
  for (const f of opts.fault) {
    const i = f.indexOf(":");
    setFault(`--fault ${f}`, f.slice(0, i), f.slice(i + 1));
  }
  const where: string[] = [];
  if (opts.listen) {
    const { host, port } = hostPort("--listen", opts.listen);
    where.push(`Modbus TCP on ${host}:${await sim.listenTcp(port, host)}`);
  }
  if (opts.rtuOverTcp) {
    const { host, port } = hostPort("--rtu-over-tcp", opts.rtuOverTcp);
    where.push(`RTU over TCP on ${host}:${await sim.listenRtuOverTcp(port, host)}`);
  }
  if (opts.serial) {
    await sim.openSerial(opts.serial, baud).catch((e: Error) => {
      throw new EdgeError(ErrorCode.PortUnavailable, `--serial ${opts.serial}: ${e.message}`);
    });
    where.push(`RTU on ${opts.serial} at ${baud} baud`);
  }
  sim.startTicking();
  process.stdout.write(
    `${green("modbus simulator")} ${devices.map((d) => `unit ${d.unit} ${d.kind}`).join(", ")}\n${where.map((w) => `  ${w}`).join("\n")}\n${dim("type 'fault UNIT KIND' or 'status'; Ctrl-C stops")}\n`,
  );

  const { createInterface } = await import("node:readline");
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    const [cmd, unit, kind] = line.trim().split(/\s+/);
    try {
      if (cmd === "fault" && unit && kind) {
        setFault(line.trim(), unit, kind);
        process.stdout.write(`unit ${unit}: ${kind}\n`);
      } else if (cmd === "status") {
        for (const [id, u] of sim.units)
          process.stdout.write(`unit ${id}: ${u.requests} requests\n`);
      } else if (cmd)
        process.stdout.write(`unknown command "${line.trim()}": fault UNIT KIND | status\n`);
    } catch (e) {
      process.stdout.write(`${(e as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  rl.close();
  await sim.close();
}
