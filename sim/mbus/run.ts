/**
 * Runs simulated M-Bus meters on a serial port (a real UART or one end of a socat pty pair).
 * Meters come from `--meter ADDR=FILE.hex` (replayed frames, e.g. the libmbus corpus) or the
 * built-in heat and water meters with growing values.
 */
import { readFileSync } from "node:fs";
import type { SimLog } from "../tic/run.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type SerialFactory, ReconnectingPort } from "../../drivers/serial/port.js";
import { heatMeter, waterMeter } from "./meters.js";
import { MbusSlaveSim, type SimMeter, meterFromFrames } from "./slave.js";
import { simHex } from "./wire.js";

export interface MbusSimOptions {
  serial: string;
  baud: number;
  /** "ADDR=FILE.hex[,FILE2.hex]" entries, served besides the built-in meters. */
  meters: string[];
  /** Built-in heat meter at 1 and water meter at 2 (default true). */
  builtin?: boolean;
  corruptEvery?: number;
  silent?: number[];
  factory?: SerialFactory;
  logger?: SimLog;
}

export function parseMeterSpec(spec: string): SimMeter {
  const m = /^(\d{1,3})=(.+)$/.exec(spec);
  if (!m || Number(m[1]) > 250)
    throw new EdgeError(
      ErrorCode.SimulatorConfig,
      `--meter "${spec}": expected ADDR=FILE.hex[,FILE2.hex] with ADDR 0..250`,
    );
  const files = m[2]!.split(",");
  const frames = files.map((f) => {
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch (e) {
      throw new EdgeError(
        ErrorCode.SimulatorConfig,
        `--meter "${spec}": cannot read ${f} (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
      );
    }
    try {
      return simHex(text);
    } catch (e) {
      throw new EdgeError(
        ErrorCode.SimulatorConfig,
        `--meter "${spec}": ${f} is not a hex frame (${(e as Error).message})`,
      );
    }
  });
  try {
    return meterFromFrames(Number(m[1]), frames);
  } catch (e) {
    throw new EdgeError(ErrorCode.SimulatorConfig, `--meter "${spec}": ${(e as Error).message}`);
  }
}

export function builtinMeters(): SimMeter[] {
  return [heatMeter(1, "12345678"), waterMeter(2, "87654321")];
}

export function runMbusSim(o: MbusSimOptions): {
  stop(): Promise<void>;
  slave: MbusSlaveSim;
  meters: SimMeter[];
} {
  const meters = [...(o.builtin === false ? [] : builtinMeters()), ...o.meters.map(parseMeterSpec)];
  const seen = new Set<number>();
  for (const m of meters) {
    if (seen.has(m.address))
      throw new EdgeError(
        ErrorCode.SimulatorConfig,
        `two simulated meters at primary address ${m.address} (built-in meters use 1 and 2; pass --no-builtin to free them)`,
      );
    seen.add(m.address);
  }
  if (meters.length === 0)
    throw new EdgeError(
      ErrorCode.SimulatorConfig,
      "no meter to simulate: give --meter ADDR=FILE.hex or keep the built-in meters",
    );
  const port: ReconnectingPort = new ReconnectingPort(
    { path: o.serial, baudRate: o.baud, dataBits: 8, parity: "even", stopBits: 1 },
    {
      ...(o.factory ? { factory: o.factory } : {}),
      minDelayMs: 200,
      maxDelayMs: 5000,
      onData: (c) => slave.feed(c),
      onState: (_s, detail) => o.logger?.info(detail),
    },
  );
  const slave = new MbusSlaveSim(
    meters,
    (b) => void port.write(b).catch((e: Error) => o.logger?.warn(`write failed: ${e.message}`)),
    {
      ...(o.corruptEvery ? { corruptEvery: o.corruptEvery } : {}),
      ...(o.silent ? { silent: new Set(o.silent) } : {}),
    },
  );
  port.start();
  return { stop: () => port.stop(), slave, meters };
}
