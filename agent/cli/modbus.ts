/**
 * `eclor-edge modbus read|write|scan TARGET`: commissioning a Modbus bus directly, like mbpoll,
 * when the agent is not running or does not own the bus. Reuses the driver's link (queueing,
 * RTU silent interval, error classification) and codec (types × byte orders). When the agent
 * owns the bus, the command says so and goes through the agent instead.
 */
import type { Command } from "commander";
import type { Reading } from "../../drivers/driver.js";
import type { ModbusLink, Op } from "../../drivers/modbus/link.js";
import { openLink } from "./modbus-link.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type Owner, describeBus, findOwner } from "./bus-owner.js";
import { renderReadings } from "./devices.js";
import { clock } from "./format.js";
import {
  type RegisterOptions,
  type RegisterRequest,
  addBusOptions,
  addRegisterOptions,
  busEndpoint,
  describeTarget,
  exitAfterBus,
  int,
  parseEndpoint,
  parseRegisterRequest,
} from "./modbus-args.js";
import { registerModbusScan } from "./modbus-scan.js";
import { dim, fail, green, printJson, red, usage } from "./output.js";

export { openLink } from "./modbus-link.js";

const readFc = { coil: 1, discrete_input: 2, holding: 3, input: 4 } as const;

export interface DecodedValue {
  address: number;
  value: number | string | boolean;
  registers?: number[];
}

export async function readOnce(link: ModbusLink, r: RegisterRequest): Promise<DecodedValue[]> {
  const { decodeRegisters, pointSize } = await import("../../drivers/modbus/codec.js");
  const point = { type: r.type, length: r.length };
  const size = r.type === "bool" ? 1 : pointSize(point);
  const total = r.count * size;
  const res = await link.request(
    { fc: readFc[r.table], unit: r.unit, address: r.address, count: total },
    "high",
  );
  if (res.bits)
    return res.bits.slice(0, r.count).map((b, i) => ({ address: r.address + i, value: b }));
  const regs = res.registers ?? [];
  if (regs.length < total)
    throw new EdgeError(
      ErrorCode.DeviceFrame,
      `short answer: ${regs.length} of ${total} registers`,
    );
  return Array.from({ length: r.count }, (_, i) => {
    const chunk = regs.slice(i * size, (i + 1) * size);
    return {
      address: r.address + i * size,
      value: exactValue(chunk, r, decodeRegisters(chunk, point, r.order)),
      registers: chunk,
    };
  });
}

/**
 * int64/uint64 exactly, through BigInt (a JS number keeps 53 bits): a number while it is
 * exact, else its decimal text. Other types are exact as decoded (float32: the shortest
 * decimal that reads back the same, like mbpoll).
 */
function exactValue(
  chunk: number[],
  r: RegisterRequest,
  decoded: number | string,
): number | string {
  if (r.type !== "int64" && r.type !== "uint64") return decoded;
  const words = r.order === "CDAB" || r.order === "DCBA" ? [...chunk].reverse() : chunk;
  const swap = r.order === "BADC" || r.order === "DCBA";
  let big = 0n;
  for (const w of words) big = (big << 16n) | BigInt(swap ? ((w & 0xff) << 8) | (w >> 8) : w);
  if (r.type === "int64") big = BigInt.asIntN(64, big);
  return Number.isSafeInteger(Number(big)) ? Number(big) : big.toString();
}

/**
 * Datasheets often give 1-based references (40001 = holding register 0, 30001 = input 0): an
 * address in those ranges is most likely one, so say what the 0-based address would be.
 */
export function oneBasedHint(table: string, address: number): string | undefined {
  const base = { holding: 40001, input: 30001, discrete_input: 10001 }[table];
  if (base === undefined) return;
  for (const b of [base, (base - 1) * 10 + 1])
    if (address >= b && address < b + (b > 100_000 ? 65536 : 9999))
      return `hint: ${table} address ${address} looks like a 1-based reference (${b} = ${table} 0); this command takes the 0-based address: -a ${address - b}`;
  return;
}

export function modbusFailure(
  e: unknown,
  r: { unit: number },
  target: string,
  timeoutMs: number,
): EdgeError {
  const err = e as { quality?: string; message?: string };
  switch (err.quality ?? "") {
    case "timeout":
      return new EdgeError(
        ErrorCode.DeviceTimeout,
        `no answer from unit ${r.unit} on ${target} within ${timeoutMs} ms — check the unit id, wiring, baud rate and parity`,
      );
    case "exception":
      return new EdgeError(
        ErrorCode.DeviceException,
        `unit ${r.unit} answered with ${err.message ?? "an exception"}`,
      );
    case "frame_error":
      return new EdgeError(
        ErrorCode.DeviceFrame,
        `unit ${r.unit}: ${err.message ?? "frame error"} — check baud rate, parity and termination`,
      );
    case "comm_error":
      return new EdgeError(ErrorCode.PortUnavailable, err.message ?? `cannot open ${target}`);
    default:
      return e instanceof EdgeError
        ? e
        : new EdgeError(ErrorCode.CommandFailed, err.message ?? String(e));
  }
}

function renderValues(values: DecodedValue[], hex: boolean): string {
  if (hex)
    // The raw register view of `mbpoll -t 4:hex`: one line per register, whatever the type.
    return values
      .flatMap((v) =>
        (v.registers ?? []).map(
          (w, i) => `[${v.address + i}]: 0x${w.toString(16).toUpperCase().padStart(4, "0")}`,
        ),
      )
      .join("\n");
  return values
    .map(
      (v) =>
        `[${v.address}]: ${typeof v.value === "boolean" ? (v.value ? 1 : 0) : String(v.value)}`,
    )
    .join("\n");
}

/**
 * The agent owns the bus: read the register asked through the agent, as the configured points
 * that cover it (the agent polls points, not raw registers). The points are found in the
 * configuration file the agent runs (`-c`, default /etc/eclor-edge/config.yaml).
 */
async function readThroughAgent(
  owner: Owner,
  r: RegisterRequest,
  opts: ReadOptions,
  addressGiven: boolean,
): Promise<void> {
  const [{ loadConfigFile }, { pointSize }, { DEFAULT_CONFIG_PATH }] = await Promise.all([
    import("../../config/load.js"),
    import("../../drivers/modbus/codec.js"),
    import("../paths.js"),
  ]);
  const onBus = new Set(
    (owner.bus.devices ?? []).filter((d) => d.address === r.unit).map((d) => d.id),
  );
  const stop = "to read other registers, stop the agent first (systemctl stop eclor-edge)";
  if (onBus.size === 0)
    throw new EdgeError(
      ErrorCode.BusOwnedByAgent,
      `the agent owns ${describeBus(owner.bus)} and has no device with unit ${r.unit}; ${stop}`,
      { ...owner.bus },
    );
  if (!addressGiven) {
    // No -a: every configured point of the unit, as the agent polls them.
    process.stderr.write(
      `the agent owns ${describeBus(owner.bus)}: reading unit ${r.unit} through the agent (its configured points)\n`,
    );
    return printAgentReads(
      owner,
      [...onBus].map((device) => ({ device })),
      opts,
    );
  }
  let config;
  try {
    config = loadConfigFile(opts.config ?? DEFAULT_CONFIG_PATH);
  } catch (e) {
    throw new EdgeError(
      ErrorCode.BusOwnedByAgent,
      `the agent owns ${describeBus(owner.bus)}: to read ${r.table} ${r.address} through it, the agent's config file is needed to find the points there (-c FILE): ${(e as Error).message}`,
      { ...owner.bus },
    );
  }
  const drv = config.drivers.find((d) => d.id === owner.bus.driver);
  const size = r.type === "bool" ? 1 : pointSize({ type: r.type, length: r.length });
  const end = r.address + r.count * size;
  const asked: { device: string; points: string[] }[] = [];
  for (const dev of drv?.driver === "modbus" ? drv.devices : []) {
    if (!onBus.has(dev.id)) continue;
    const points = dev.points
      .filter((p) => p.table === r.table && p.address < end && p.address + pointSize(p) > r.address)
      .map((p) => p.id);
    if (points.length) asked.push({ device: dev.id, points });
  }
  if (asked.length === 0)
    throw new EdgeError(
      ErrorCode.BusOwnedByAgent,
      `the agent owns ${describeBus(owner.bus)}: unit ${r.unit} has no configured point at ${r.table} ${r.address}${end - 1 > r.address ? `..${end - 1}` : ""} (see \`eclor-edge devices\`); ${stop}`,
      { ...owner.bus },
    );
  process.stderr.write(
    `the agent owns ${describeBus(owner.bus)}: reading ${r.table} ${r.address} of unit ${r.unit} through the agent, as ${asked.map((a) => `${a.device}/${a.points.join(",")}`).join(" ")}\n`,
  );
  return printAgentReads(owner, asked, opts);
}

async function printAgentReads(
  owner: Owner,
  asked: { device: string; points?: string[] }[],
  opts: ReadOptions,
): Promise<void> {
  const results: { device: string; readings: Reading[] }[] = [];
  for (const a of asked)
    results.push(await owner.client.call<{ device: string; readings: Reading[] }>("read", a));
  const ok = results.every((x) =>
    x.readings.every((y) => y.quality === "good" || y.quality === "uncertain"),
  );
  if (opts.json) printJson({ ok, via: "agent", bus: owner.bus, devices: results });
  else
    for (const x of results) process.stdout.write(`${x.device}\n${renderReadings(x.readings)}\n`);
  if (!ok) process.exitCode = 1;
}

interface ReadOptions extends RegisterOptions {
  every?: string;
  times?: string;
  hex?: boolean;
}

function parseValues(r: RegisterRequest, texts: string[]): (number | string | boolean)[] {
  return texts.map((t) => {
    if (r.type === "bool") {
      const l = t.toLowerCase();
      if (["1", "true", "on"].includes(l)) return true;
      if (["0", "false", "off"].includes(l)) return false;
      throw usage(`VALUE: expected 1/0, true/false or on/off for a ${r.table}, got "${t}"`);
    }
    if (r.type === "string") return t;
    const n = Number(t);
    if (t.trim() === "" || !Number.isFinite(n))
      throw usage(`VALUE: expected a number for ${r.type}, got "${t}"`);
    return n;
  });
}

export function registerModbusCommands(program: Command): void {
  const modbus = program
    .command("modbus")
    .description("Commission a Modbus bus directly (like mbpoll): read, write, scan unit ids");

  addRegisterOptions(
    addBusOptions(
      modbus
        .command("read")
        .description(
          "Read coils or registers once, or every N ms; exit 1 when the device does not answer",
        )
        .argument(
          "<target>",
          "serial device (/dev/ttyUSB0 → RTU) or host[:port] (→ TCP, port 502)",
        ),
    ),
  )
    .option("-e, --every <ms>", "poll every N milliseconds until Ctrl-C")
    .option("--times <n>", "with --every: stop after n polls")
    .option("-x, --hex", "raw register view: every register in hex (like mbpoll -t 4:hex)")
    .action(async (target: string, opts: ReadOptions, cmd: Command) => {
      let link: ModbusLink | undefined;
      try {
        const ep = parseEndpoint(target, opts);
        const r = parseRegisterRequest(opts);
        const hint = oneBasedHint(r.table, r.address);
        if (hint) process.stderr.write(`${hint}\n`);
        const every =
          opts.every === undefined ? undefined : int("--every", opts.every, 10, 86_400_000);
        const times =
          opts.times === undefined
            ? every === undefined
              ? 1
              : Infinity
            : int("--times", opts.times, 1, 1_000_000);
        const owner = await findOwner(opts, busEndpoint(ep));
        if (owner) {
          try {
            return await readThroughAgent(
              owner,
              r,
              opts,
              cmd.getOptionValueSource("address") === "cli",
            );
          } finally {
            owner.client.close();
          }
        }
        link = await openLink(ep, r.timeoutMs);
        const name = describeTarget(ep);
        let stop = false;
        let failures = 0;
        const onSignal = () => (stop = true);
        process.once("SIGINT", onSignal);
        for (let i = 0; i < times && !stop; i++) {
          const started = Date.now();
          try {
            const values = await readOnce(link, r);
            if (opts.json) {
              const out = {
                ok: true,
                ts: started,
                target: name,
                unit: r.unit,
                table: r.table,
                type: r.type,
                order: r.order,
                values,
              };
              process.stdout.write(
                every === undefined
                  ? `${JSON.stringify(out, null, 2)}\n`
                  : `${JSON.stringify(out)}\n`,
              );
            } else {
              if (every !== undefined)
                process.stdout.write(dim(`-- ${clock(started)} poll ${i + 1}\n`));
              process.stdout.write(`${renderValues(values, Boolean(opts.hex))}\n`);
            }
          } catch (e) {
            failures++;
            const err = modbusFailure(e, r, name, r.timeoutMs);
            if (every === undefined) throw err;
            if (opts.json)
              process.stdout.write(
                `${JSON.stringify({ ok: false, ts: started, error: { code: err.codeName, message: err.text } })}\n`,
              );
            else process.stdout.write(`${red("error")}: ${err.message}\n`);
          }
          if (every !== undefined && i + 1 < times && !stop) {
            await new Promise((res) => setTimeout(res, Math.max(0, started + every - Date.now())));
          }
        }
        process.off("SIGINT", onSignal);
        if (failures > 0) process.exitCode = 1;
      } catch (e) {
        fail(e, opts.json);
      } finally {
        await link?.close();
      }
      exitAfterBus();
    });

  addRegisterOptions(
    addBusOptions(
      modbus
        .command("write")
        .description(
          "Write coils or registers (FC5/6 for one, FC15/16 for several) on a bus the agent does not own",
        )
        .argument("<target>", "serial device (/dev/ttyUSB0 → RTU) or host[:port] (→ TCP, port 502)")
        .argument(
          "<values...>",
          "values: numbers, 1/0 or on/off for coils, text with --type string",
        ),
    ),
  ).action(async (target: string, texts: string[], opts: RegisterOptions) => {
    let link: ModbusLink | undefined;
    try {
      const ep = parseEndpoint(target, opts);
      const r = parseRegisterRequest({ ...opts, count: String(texts.length) });
      const hint = oneBasedHint(r.table, r.address);
      if (hint) process.stderr.write(`${hint}\n`);
      if (r.table === "input" || r.table === "discrete_input")
        throw usage(`--table: ${r.table} is read-only; write to holding registers or coils`);
      const values = parseValues(r, texts);
      const { encodeRegisters, EncodeError } = await import("../../drivers/modbus/codec.js");
      let op: Op;
      if (r.type === "bool") {
        const bits = values as boolean[];
        op =
          bits.length === 1
            ? { fc: 5, unit: r.unit, address: r.address, value: bits[0]! }
            : { fc: 15, unit: r.unit, address: r.address, values: bits };
      } else {
        let regs: number[];
        try {
          regs = values.flatMap((v) =>
            encodeRegisters(v as number | string, { type: r.type, length: r.length }, r.order),
          );
        } catch (e) {
          if (e instanceof EncodeError) throw usage(`VALUE: ${e.message}`);
          throw e;
        }
        if (regs.length > 123)
          throw usage(`VALUE: ${regs.length} registers is more than one request can write (123)`);
        op =
          regs.length === 1
            ? { fc: 6, unit: r.unit, address: r.address, value: regs[0]! }
            : { fc: 16, unit: r.unit, address: r.address, values: regs };
      }
      const owner = await findOwner(opts, busEndpoint(ep));
      if (owner) {
        owner.client.close();
        throw new EdgeError(
          ErrorCode.BusOwnedByAgent,
          `the agent owns ${describeBus(owner.bus)}: writes go through its command router — use \`eclor-edge write DEVICE POINT VALUE\` (see \`eclor-edge devices\`), or stop the agent to commission the bus directly`,
          { ...owner.bus },
        );
      }
      link = await openLink(ep, r.timeoutMs);
      const name = describeTarget(ep);
      try {
        await link.request(op, "high");
      } catch (e) {
        throw modbusFailure(e, r, name, r.timeoutMs);
      }
      if (opts.json)
        printJson({
          ok: true,
          target: name,
          unit: r.unit,
          table: r.table,
          address: r.address,
          fc: op.fc,
          values,
        });
      else
        process.stdout.write(
          `${green("ok")} wrote ${values.length} value(s) to unit ${r.unit} ${r.table} ${r.address} (FC${op.fc})\n`,
        );
    } catch (e) {
      fail(e, opts.json);
    } finally {
      await link?.close();
    }
    exitAfterBus();
  });

  registerModbusScan(modbus);
}
