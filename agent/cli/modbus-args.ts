/**
 * Arguments of the direct Modbus commands, in the spirit of mbpoll: a TARGET that is a serial
 * device (`/dev/ttyUSB0` → RTU) or `host[:port]` (→ TCP, port 502), a unit id, a table, a 0-based
 * address, a count, a value type and a byte/word order. Every mistake is bad input (exit 2)
 * naming the option and what it accepts.
 */
import type { Command } from "commander";
import type { LinkEndpoint } from "../../drivers/modbus/link.js";
import {
  byteOrders,
  pointTypes,
  type ByteOrder,
  type PointType,
} from "../../drivers/modbus/schema.js";
import type { Endpoint } from "./bus-owner.js";
import { usage } from "./output.js";

export type Table = "coil" | "discrete_input" | "holding" | "input";

/** Table names, with mbpoll's `-t` numbers as aliases (0 coil, 1 discrete input, 3 input, 4 holding). */
const tableAliases: Record<string, Table> = {
  coil: "coil",
  coils: "coil",
  "0": "coil",
  discrete_input: "discrete_input",
  discrete: "discrete_input",
  di: "discrete_input",
  "1": "discrete_input",
  input: "input",
  ir: "input",
  "3": "input",
  holding: "holding",
  hr: "holding",
  "4": "holding",
};

export interface BusOptions {
  mode?: string;
  baud: string;
  parity: string;
  dataBits: string;
  stopBits: string;
  timeout: string;
  json?: boolean;
  socket?: string;
  config?: string;
  direct?: boolean;
}

export interface RegisterOptions extends BusOptions {
  unit: string;
  table: string;
  address: string;
  count: string;
  type?: string;
  order: string;
  length?: string;
}

export function addBusOptions(cmd: Command): Command {
  return cmd
    .option(
      "-m, --mode <mode>",
      "tcp, rtu or rtu-over-tcp (default: rtu for a /dev path, else tcp)",
    )
    .option("-b, --baud <rate>", "serial baud rate", "9600")
    .option("-P, --parity <parity>", "serial parity: none, even or odd", "none")
    .option("-d, --data-bits <bits>", "serial data bits: 7 or 8", "8")
    .option("-s, --stop-bits <bits>", "serial stop bits: 1 or 2", "1")
    .option("--timeout <ms>", "answer timeout in milliseconds", "1000")
    .option("--socket <path>", "control socket of the agent (to detect a bus it owns)")
    .option("-c, --config <file>", "config file, to find the control socket")
    .option("--json", "machine-readable output");
}

export function addRegisterOptions(cmd: Command): Command {
  return cmd
    .option("-u, --unit <id>", "unit (slave) id 0..255", "1")
    .option(
      "-t, --table <table>",
      "coil, discrete_input, input or holding (mbpoll -t 0/1/3/4)",
      "holding",
    )
    .option(
      "-a, --address <n>",
      "0-based address 0..65535 (the number on the wire, not 40001)",
      "0",
    )
    .option("-n, --count <n>", "number of values", "1")
    .option(
      "-T, --type <type>",
      `value type: ${pointTypes.filter((t) => t !== "bit").join(", ")} (default uint16, bool for coils)`,
    )
    .option(
      "-o, --order <order>",
      "byte/word order of multi-register values: ABCD, CDAB, BADC, DCBA",
      "ABCD",
    )
    .option("-l, --length <registers>", "registers of a string value", "1");
}

export function int(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw usage(`${name}: expected an integer ${min}..${max}, got "${text}"`);
  }
  return n;
}

/** TARGET + options → the endpoint of drivers/modbus/link.ts. */
export function parseEndpoint(target: string, o: BusOptions): LinkEndpoint {
  const mode = o.mode ?? (target.startsWith("/") ? "rtu" : "tcp");
  if (mode === "rtu") {
    if (!target.startsWith("/"))
      throw usage(
        `TARGET: expected a serial device path like /dev/ttyUSB0 for --mode rtu, got "${target}"`,
      );
    const baud = int("--baud", o.baud, 50, 4_000_000);
    if (!["none", "even", "odd"].includes(o.parity))
      throw usage(`--parity: expected none, even or odd, got "${o.parity}"`);
    const dataBits = int("--data-bits", o.dataBits, 7, 8) as 7 | 8;
    const stopBits = int("--stop-bits", o.stopBits, 1, 2) as 1 | 2;
    // 3.5 character times of 11 bits, 1.75 ms above 19200 baud (Modbus serial V1.02 §2.5.1.1).
    const frameDelayMs = baud > 19200 ? 1.75 : (3.5 * 11 * 1000) / baud;
    return {
      type: "rtu",
      path: target,
      baud,
      parity: o.parity as "none" | "even" | "odd",
      dataBits,
      stopBits,
      frameDelayMs,
    };
  }
  if (mode !== "tcp" && mode !== "rtu-over-tcp")
    throw usage(`--mode: expected tcp, rtu or rtu-over-tcp, got "${mode}"`);
  const m = /^(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?$/.exec(target);
  if (!m)
    throw usage(
      `TARGET: expected host[:port] (e.g. 192.168.1.20:502) or a serial device path, got "${target}"`,
    );
  const host = m[1]!.replace(/^\[|\]$/g, "");
  const port = m[2] === undefined ? 502 : int("TARGET port", m[2], 1, 65535);
  if (mode === "tcp") return { type: "tcp", host, port, concurrency: 1 };
  return { type: "rtu_over_tcp", host, port, frameDelayMs: 0 };
}

export interface RegisterRequest {
  unit: number;
  table: Table;
  address: number;
  count: number;
  type: PointType;
  order: ByteOrder;
  length: number;
  timeoutMs: number;
}

export function parseTable(text: string): Table {
  const t = tableAliases[text.toLowerCase()];
  if (!t)
    throw usage(
      `--table: expected coil, discrete_input, input or holding (or mbpoll's 0, 1, 3, 4), got "${text}"`,
    );
  return t;
}

export function parseRegisterRequest(o: RegisterOptions): RegisterRequest {
  // Unit 0 is the RTU broadcast address: nobody answers it, so it cannot be read or confirmed.
  const unit = int("--unit", o.unit, 1, 255);
  const table = parseTable(o.table);
  const bitTable = table === "coil" || table === "discrete_input";
  const type = (o.type ?? (bitTable ? "bool" : "uint16")) as PointType;
  if (!(pointTypes as readonly string[]).includes(type) || type === "bit") {
    throw usage(
      `--type: expected ${pointTypes.filter((t) => t !== "bit").join(", ")}, got "${o.type}"`,
    );
  }
  if (bitTable && type !== "bool")
    throw usage(`--type: ${table} values are bool; register types need --table holding or input`);
  if (!bitTable && type === "bool")
    throw usage(`--type: bool is for coils and discrete inputs; use uint16 for registers`);
  if (!(byteOrders as readonly string[]).includes(o.order.toUpperCase())) {
    throw usage(
      `--order: expected ABCD (big-endian), CDAB (word-swapped), BADC (byte-swapped) or DCBA (little-endian), got "${o.order}"`,
    );
  }
  return {
    unit,
    table,
    address: int("--address", o.address, 0, 65535),
    count: int("--count", o.count, 1, bitTable ? 2000 : 125),
    type,
    order: o.order.toUpperCase() as ByteOrder,
    length: int("--length", o.length ?? "1", 1, 123),
    timeoutMs: int("--timeout", o.timeout, 10, 60_000),
  };
}

export function busEndpoint(ep: LinkEndpoint): Endpoint {
  return ep.type === "rtu" ? { path: ep.path } : { host: ep.host, port: ep.port };
}

export function describeTarget(ep: LinkEndpoint): string {
  return ep.type === "rtu"
    ? `${ep.path} (${ep.baud} baud, ${ep.parity}, ${ep.dataBits}${ep.stopBits})`
    : `${ep.host}:${ep.port}${ep.type === "rtu_over_tcp" ? " (RTU over TCP)" : ""}`;
}

/**
 * End the process once the command is done, whatever handle is still open (a serial port whose
 * close has not completed, the agent's socket); stdout is synchronous for files, pipes and
 * TTYs on Linux, so nothing printed is lost.
 */
export function exitAfterBus(): never {
  process.exit(process.exitCode ?? 0);
}
