/**
 * `eclor-edge modbus scan TARGET`: walk a unit-id range and list what answers. A unit is present
 * when it answers at all — with data or with an exception (illegal address/function still proves
 * someone is there); a garbled answer is listed apart (wrong baud/parity, or two devices sharing
 * an id). Every address gets --timeout. With --min-timeout the timeout is measured instead: once
 * units answer it shrinks to a few times the slowest answer seen (never below --min-timeout), so
 * a 247-address scan of a healthy bus takes seconds — at the risk of missing a slower unit.
 *
 * On a terminal, a progress bar with an ETA and the current timeout is drawn on stdout; when
 * stdout is not a terminal (a pipe, a file, a script) only result lines are printed.
 */
import type { Command } from "commander";
import type { ModbusLink } from "../../drivers/modbus/link.js";
import type { StatusView } from "../control/backend.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { describeBus, findOwner } from "./bus-owner.js";
import { duration, table } from "./format.js";
import {
  type BusOptions,
  addBusOptions,
  busEndpoint,
  describeTarget,
  exitAfterBus,
  int,
  parseEndpoint,
  parseTable,
  type Table,
} from "./modbus-args.js";
import { openLink } from "./modbus-link.js";
import { bold, dim, fail, green, printJson, yellow } from "./output.js";

interface ScanOptions extends BusOptions {
  from: string;
  to: string;
  minTimeout?: string;
  table: string;
  address: string;
}

export interface ScanHit {
  unit: number;
  rttMs: number;
  answer: string;
}

/** Next timeout: 3× the slowest answer + 20 ms of slack for a busy host, within [min, max]. */
export function measuredTimeout(
  slowestMs: number | undefined,
  minMs: number,
  maxMs: number,
): number {
  if (slowestMs === undefined) return maxMs;
  return Math.min(maxMs, Math.max(minMs, Math.ceil(slowestMs * 3 + 20)));
}

export function progressLine(
  done: number,
  total: number,
  elapsedMs: number,
  timeoutMs: number,
  measured: boolean,
  found: number,
  width = 24,
): string {
  const frac = total === 0 ? 1 : done / total;
  const filled = Math.round(frac * width);
  const eta = done === 0 ? "…" : duration(((total - done) * elapsedMs) / done);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ${Math.floor(frac * 100)}% · ETA ${eta} · timeout ${timeoutMs} ms${measured ? " (measured)" : ""} · found ${found}`;
}

type Outcome = { kind: "answer" | "exception" | "garbled"; text: string } | { kind: "silent" };

const probeFc = { coil: 1, discrete_input: 2, holding: 3, input: 4 } as const;

/** One probe on the driver's link (the same framing and checks as polling). */
async function probe(
  link: ModbusLink,
  unit: number,
  tableName: Table,
  address: number,
  timeoutMs: number,
): Promise<Outcome> {
  try {
    const r = await link.request(
      { fc: probeFc[tableName], unit, address, count: 1 },
      "high",
      timeoutMs,
    );
    return {
      kind: "answer",
      text: r.registers
        ? `${tableName} ${address} = ${r.registers[0]}`
        : `${tableName} ${address} read`,
    };
  } catch (e) {
    const { ModbusError } = await import("../../drivers/modbus/link.js");
    const err = e instanceof ModbusError ? e : new ModbusError("comm_error", String(e));
    if (err.quality === "exception") return { kind: "exception", text: err.message };
    if (err.quality === "frame_error") return { kind: "garbled", text: err.message };
    if (err.quality === "timeout") return { kind: "silent" };
    throw new EdgeError(
      ErrorCode.PortUnavailable,
      `the bus failed during the scan at unit ${unit}: ${err.message}`,
    );
  }
}

async function listThroughAgent(
  owner: NonNullable<Awaited<ReturnType<typeof findOwner>>>,
  json: boolean,
): Promise<void> {
  const s = await owner.client.call<StatusView>("status");
  const drv = s.drivers.find((d) => d.id === owner.bus.driver);
  const addr = new Map((owner.bus.devices ?? []).map((d) => [d.id, d.address] as const));
  const devices = (drv?.devices ?? []).map((d) => ({
    id: d.id,
    unit: addr.get(d.id),
    online: d.online,
    lastGoodTs: d.last_good_ts !== undefined ? d.last_good_ts * 1000 : undefined,
    lastError: d.last_error,
  }));
  process.stderr.write(
    `the agent owns ${describeBus(owner.bus)}: listing its devices on this bus instead of scanning (stop the agent to scan the bus)\n`,
  );
  if (json) printJson({ ok: true, via: "agent", bus: owner.bus, devices });
  else
    process.stdout.write(
      `${table(
        ["UNIT", "DEVICE", "STATE", "LAST ERROR"],
        devices.map((d) => [
          String(d.unit ?? "?"),
          d.id,
          d.online ? "online" : "OFFLINE",
          d.lastError ?? "",
        ]),
      )}\n`,
    );
}

export function registerModbusScan(modbus: Command): void {
  addBusOptions(
    modbus
      .command("scan")
      .description(
        "Find the unit ids that answer on a bus (progress bar, ETA and measured timeout on a terminal)",
      )
      .argument("<target>", "serial device (/dev/ttyUSB0 → RTU) or host[:port] (→ TCP, port 502)"),
  )
    .option("--from <id>", "first unit id", "1")
    .option("--to <id>", "last unit id", "247")
    .option(
      "--min-timeout <ms>",
      "measure: once units answer, shorten the timeout to 3× the slowest answer, never below this (default: --timeout for every address)",
    )
    .option(
      "-t, --table <table>",
      "what to probe: holding, input, coil or discrete_input",
      "holding",
    )
    .option("-a, --address <n>", "0-based address to probe", "0")
    .action(async (target: string, opts: ScanOptions) => {
      let client: ModbusLink | undefined;
      try {
        const ep = parseEndpoint(target, opts);
        const from = int("--from", opts.from, 0, 255);
        const to = int("--to", opts.to, 0, 255);
        if (from > to)
          throw new EdgeError(ErrorCode.UsageError, `--from: ${from} is after --to ${to}`);
        const maxTimeout = int("--timeout", opts.timeout, 10, 60_000);
        // --timeout is honoured for every address unless a floor for measuring is given: a unit
        // answering in 250 ms must not be missed because a fast one came before it.
        const minTimeout =
          opts.minTimeout === undefined
            ? maxTimeout
            : int("--min-timeout", opts.minTimeout, 1, maxTimeout);
        const tableName = parseTable(opts.table);
        const address = int("--address", opts.address, 0, 65535);
        const owner = await findOwner(opts, busEndpoint(ep));
        if (owner) {
          try {
            return await listThroughAgent(owner, Boolean(opts.json));
          } finally {
            owner.client.close();
          }
        }
        const name = describeTarget(ep);
        client = await openLink(ep, maxTimeout);
        const tty = Boolean(process.stdout.isTTY) && !opts.json;
        const total = to - from + 1;
        const hits: ScanHit[] = [];
        const garbled: ScanHit[] = [];
        let slowest: number | undefined;
        let timeout = maxTimeout;
        const started = Date.now();
        let stop = false;
        const onSignal = () => (stop = true);
        process.once("SIGINT", onSignal);
        const draw = (done: number) => {
          if (tty)
            process.stdout.write(
              `\r\u001b[2K${progressLine(done, total, Date.now() - started, timeout, slowest !== undefined && opts.minTimeout !== undefined, hits.length)}`,
            );
        };
        const say = (line: string) => {
          if (opts.json) return;
          process.stdout.write(tty ? `\r\u001b[2K${line}\n` : `${line}\n`);
        };
        if (!opts.json)
          say(dim(`scanning units ${from}..${to} on ${name}, ${tableName} ${address}`));
        let done = 0;
        for (let unit = from; unit <= to && !stop; unit++) {
          draw(done);
          const t0 = performance.now();
          const out = await probe(client, unit, tableName, address, timeout);
          const rtt = Math.round((performance.now() - t0) * 10) / 10;
          done++;
          if (out.kind === "silent") continue;
          const hit = { unit, rttMs: rtt, answer: out.text };
          if (out.kind === "garbled") {
            garbled.push(hit);
            say(
              yellow(
                `unit ${unit}: garbled answer (${out.text}) — wrong baud/parity, or two devices with this id?`,
              ),
            );
            continue;
          }
          hits.push(hit);
          slowest = Math.max(slowest ?? 0, rtt);
          if (opts.minTimeout !== undefined)
            timeout = measuredTimeout(slowest, minTimeout, maxTimeout);
          say(`${green("found")} unit ${unit}: ${out.text} in ${rtt} ms`);
        }
        process.off("SIGINT", onSignal);
        if (tty) process.stdout.write("\r\u001b[2K");
        const elapsed = Date.now() - started;
        if (opts.json) {
          printJson({
            ok: hits.length > 0,
            target: name,
            from,
            to,
            scanned: done,
            table: tableName,
            address,
            timeoutMs: timeout,
            durationMs: elapsed,
            found: hits,
            garbled,
          });
        } else {
          const ids = hits.map((h) => h.unit).join(", ");
          process.stdout.write(
            `${bold(hits.length ? `found ${hits.length} unit(s): ${ids}` : "no unit answered")} (scanned ${done} of ${total} in ${duration(elapsed)}, timeout ${timeout} ms${slowest !== undefined && opts.minTimeout !== undefined ? " measured" : ""})\n`,
          );
        }
        if (hits.length === 0) process.exitCode = 1;
      } catch (e) {
        fail(e, opts.json);
      } finally {
        await client?.close();
      }
      exitAfterBus();
    });
}
