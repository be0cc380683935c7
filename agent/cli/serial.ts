/**
 * `eclor-edge serial list`: the serial ports of the box (USB adapters, on-board UARTs), with
 * their stable /dev/serial/by-id names (use those in the config: ttyUSB numbers change with the
 * plugging order) and which one the running agent owns.
 */
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import type { BusInfo } from "../control/backend.js";
import { type AgentOptions, withAgent, withAgentOptions } from "./agent-conn.js";
import { samePort } from "./bus-owner.js";
import { table } from "./format.js";
import { dim, fail, printJson } from "./output.js";

export interface SerialPortView {
  path: string;
  byId?: string;
  manufacturer?: string;
  serialNumber?: string;
  vendorId?: string;
  productId?: string;
  /** Driver id of the running agent that owns the port. */
  ownedBy?: string;
}

function byIdLinks(): Map<string, string> {
  const dir = "/dev/serial/by-id";
  const links = new Map<string, string>();
  try {
    for (const name of readdirSync(dir)) {
      try {
        links.set(realpathSync(join(dir, name)), join(dir, name));
      } catch {
        // A dangling link (adapter unplugged while listing): skip it.
      }
    }
  } catch {
    // No USB serial adapter plugged: the directory does not exist.
  }
  return links;
}

function sysfsTtys(): string[] {
  const base = "/sys/class/tty";
  try {
    return readdirSync(base)
      .filter((name) => existsSync(join(base, name, "device")))
      .map((name) => `/dev/${name}`)
      .sort();
  } catch {
    return [];
  }
}

export async function listSerialPorts(opts: AgentOptions): Promise<SerialPortView[]> {
  const { SerialPort } = await import("serialport");
  let ports: {
    path: string;
    manufacturer?: string;
    serialNumber?: string;
    vendorId?: string;
    productId?: string;
  }[];
  try {
    ports = await SerialPort.list();
  } catch {
    // serialport lists through `udevadm`, absent in containers and minimal images: fall back to
    // the kernel's view, the ttys that have a device behind them.
    ports = sysfsTtys().map((path) => ({ path }));
  }
  const links = byIdLinks();
  let buses: BusInfo[] = [];
  try {
    buses = await withAgent(
      opts,
      async (c) => (await c.call<{ buses: BusInfo[] }>("buses")).buses,
      { timeoutMs: 1000 },
    );
  } catch {
    // Agent not running: nobody owns a port.
  }
  const owner = (path: string) => buses.find((b) => samePort(b, path))?.driver;
  return ports.map((p) => {
    const byId = links.get(p.path);
    const ownedBy = owner(p.path);
    return {
      path: p.path,
      ...(byId ? { byId } : {}),
      ...(p.manufacturer ? { manufacturer: p.manufacturer } : {}),
      ...(p.serialNumber ? { serialNumber: p.serialNumber } : {}),
      ...(p.vendorId ? { vendorId: p.vendorId } : {}),
      ...(p.productId ? { productId: p.productId } : {}),
      ...(ownedBy ? { ownedBy } : {}),
    };
  });
}

export function registerSerialCommands(program: Command): void {
  const serial = program.command("serial").description("Serial ports of the box");
  withAgentOptions(
    serial
      .command("list")
      .description("List serial ports, their stable by-id names and which the agent owns")
      .option("--json", "machine-readable output"),
  ).action(async (opts: AgentOptions) => {
    try {
      const ports = await listSerialPorts(opts);
      if (opts.json) printJson({ ports });
      else if (ports.length === 0)
        process.stdout.write(
          "no serial port found (is the USB adapter plugged in? see `dmesg | tail`)\n",
        );
      else {
        const rows = ports.map((p) => [
          p.path,
          p.byId ?? dim("—"),
          [
            p.manufacturer,
            p.vendorId && p.productId ? `${p.vendorId}:${p.productId}` : undefined,
            p.serialNumber,
          ]
            .filter(Boolean)
            .join(" ") || dim("—"),
          p.ownedBy ? `agent (${p.ownedBy})` : "free",
        ]);
        process.stdout.write(`${table(["PORT", "STABLE NAME", "ADAPTER", "USED BY"], rows)}\n`);
      }
    } catch (e) {
      fail(e, opts.json);
    }
  });
}
