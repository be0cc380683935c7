/**
 * Runs the TIC meter simulator on a serial port (a real UART or one end of a socat pty pair):
 * one frame every `intervalMs`, reopening the port by itself if it disappears.
 */
/** Where a simulator reports what it does (stderr in the CLI). */
export interface SimLog {
  info(msg: string): void;
  warn(msg: string): void;
}
import { type SerialFactory, ReconnectingPort } from "../../drivers/serial/port.js";
import type { SimTicMode as TicMode } from "./wire.js";
import { TicMeterSim } from "./meter.js";

export interface TicSimOptions {
  serial: string;
  mode: TicMode;
  intervalMs: number;
  meterId?: string;
  count?: number;
  corruptEvery?: number;
  abortEvery?: number;
  factory?: SerialFactory;
  logger?: SimLog;
}

export interface RunningSim {
  /** Frames written so far. */
  readonly sent: () => number;
  /** Resolves when `count` frames were sent or `stop()` was called. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export function runTicSim(o: TicSimOptions): RunningSim {
  const sim = new TicMeterSim({
    mode: o.mode,
    ...(o.meterId ? { meterId: o.meterId } : {}),
    ...(o.corruptEvery ? { corruptEvery: o.corruptEvery } : {}),
    ...(o.abortEvery ? { abortEvery: o.abortEvery } : {}),
  });
  const port = new ReconnectingPort(
    {
      path: o.serial,
      baudRate: o.mode === "historic" ? 1200 : 9600,
      dataBits: 7,
      parity: "even",
      stopBits: 1,
    },
    {
      ...(o.factory ? { factory: o.factory } : {}),
      minDelayMs: 200,
      maxDelayMs: 5000,
      onData: () => undefined,
      onState: (_s, detail) => o.logger?.info(detail),
    },
  );
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((r) => (finish = r));
  const tick = async () => {
    timer = undefined;
    if (port.isOpen) {
      try {
        await port.write(sim.nextFrame());
        sent++;
      } catch (e) {
        o.logger?.warn(`write failed: ${(e as Error).message}`);
      }
    }
    if (o.count !== undefined && sent >= o.count) {
      await port.stop();
      finish();
      return;
    }
    if (stopped) return;
    timer = setTimeout(() => void tick(), o.intervalMs);
  };
  let stopped = false;
  port.start();
  timer = setTimeout(() => void tick(), 50);
  return {
    sent: () => sent,
    done,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await port.stop();
      finish();
    },
  };
}
