/**
 * `eclor-edge tic sniff PORT`: watch a Linky/CBE meter's TIC stream on a serial port the agent
 * does not own, decoded with the driver's own parser and label table (drivers/tic). Shows each
 * frame's groups with values and units, and the groups dropped (checksum, framing) with the
 * reason. In `auto` mode it listens at 1200 baud (historic) and, when no valid frame comes,
 * at 9600 (standard). When the agent owns the port, it reads the agent's TIC devices instead.
 */
import type { Command } from "commander";
import type { Reading } from "../../drivers/driver.js";
import type { TicFrame, TicMode } from "../../drivers/tic/frame.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type AgentOptions, withAgentOptions } from "./agent-conn.js";
import { describeBus, findOwner } from "./bus-owner.js";
import { renderReadings } from "./devices.js";
import { clock, table } from "./format.js";
import { int } from "./modbus-args.js";
import { bold, dim, fail, printJson, usage, yellow } from "./output.js";

interface SniffOptions extends AgentOptions {
  mode: string;
  frames?: string;
  timeout: string;
}

const baudOf: Record<TicMode, number> = { historic: 1200, standard: 9600 };

export async function renderFrame(f: TicFrame, n: number, ts: number): Promise<string> {
  const { decodeGroup } = await import("../../drivers/tic/labels.js");
  const rows = f.groups.map((g) => {
    const d = decodeGroup(f.mode, g);
    if (!d.ok) return [g.label, "", "", `${g.data} ${yellow(`(${d.reason})`)}`];
    const v = d.decoded;
    // The value goes last: some (PJOURF+1, MSG1) are long and must not widen the other columns.
    return [
      g.label,
      v.point,
      v.time ? dim(v.time) : "",
      `${String(v.value)}${v.unit ? ` ${v.unit}` : ""}`,
    ];
  });
  const head = bold(
    `${clock(ts)} frame ${n} · ${f.mode} · ${f.groups.length} group(s)${f.dropped ? yellow(` · ${f.dropped} dropped`) : ""}`,
  );
  const errs = f.errors.map((e) => yellow(`  dropped: ${e}`));
  return [head, table(["LABEL", "POINT", "TIME", "VALUE"], rows, "  "), ...errs].join("\n");
}

async function frameJson(f: TicFrame, ts: number) {
  const { decodeGroup } = await import("../../drivers/tic/labels.js");
  return {
    ts,
    mode: f.mode,
    dropped: f.dropped,
    errors: f.errors,
    groups: f.groups.map((g) => {
      const d = decodeGroup(f.mode, g);
      return {
        ...g,
        ...(d.ok
          ? {
              point: d.decoded.point,
              value: d.decoded.value,
              ...(d.decoded.unit ? { unit: d.decoded.unit } : {}),
            }
          : { error: d.reason }),
      };
    }),
  };
}

/** Listen at one speed until `count` frames or `timeoutMs` without a valid frame. */
async function listen(
  path: string,
  mode: TicMode,
  count: number,
  timeoutMs: number,
  onFrame: (f: TicFrame) => Promise<void>,
): Promise<number> {
  const [{ nodeSerialFactory }, { TicStreamParser }] = await Promise.all([
    import("../../drivers/serial/port.js"),
    import("../../drivers/tic/frame.js"),
  ]);
  let port;
  try {
    port = await nodeSerialFactory({
      path,
      baudRate: baudOf[mode],
      dataBits: 7,
      parity: "even",
      stopBits: 1,
    });
  } catch (e) {
    throw new EdgeError(
      ErrorCode.PortUnavailable,
      `cannot open ${path}: ${(e as Error).message} — see \`eclor-edge serial list\``,
    );
  }
  let seen = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let timer = setTimeout(resolve, timeoutMs);
      let chain = Promise.resolve();
      const parser = new TicStreamParser((f) => {
        // A frame at the wrong speed decodes to garbage groups: only frames with groups count.
        if (f.groups.length === 0 || seen >= count) return;
        seen++;
        clearTimeout(timer);
        chain = chain.then(() => onFrame(f)).catch(reject);
        if (seen >= count) void chain.then(resolve);
        else timer = setTimeout(resolve, timeoutMs);
      });
      port.onData((c) => parser.feed(c));
      port.onClose((err) =>
        err
          ? reject(new EdgeError(ErrorCode.PortUnavailable, `${path} closed: ${err.message}`))
          : resolve(),
      );
      process.once("SIGINT", () => resolve());
    });
  } finally {
    await port.close();
  }
  return seen;
}

export function registerTicCommands(program: Command): void {
  const tic = program
    .command("tic")
    .description("Linky / CBE téléinformation (TIC) commissioning tools");
  withAgentOptions(
    tic
      .command("sniff")
      .description("Decode the TIC frames arriving on a serial port (Ctrl-C to stop)")
      .argument(
        "<port>",
        "serial device of the TIC interface, e.g. /dev/ttyAMA0 or /dev/serial/by-id/…",
      )
      .option("--mode <mode>", "auto, historic (1200 baud 7E1) or standard (9600 baud 7E1)", "auto")
      .option("-n, --frames <n>", "stop after n frames")
      .option(
        "--timeout <ms>",
        "give up (or, in auto mode, try the other speed) after this long without a frame",
        "5000",
      )
      .option("--json", "one JSON object per frame (JSON Lines)"),
  ).action(async (path: string, opts: SniffOptions) => {
    try {
      if (!["auto", "historic", "standard"].includes(opts.mode))
        throw usage(`--mode: expected auto, historic or standard, got "${opts.mode}"`);
      const count =
        opts.frames === undefined ? Infinity : int("--frames", opts.frames, 1, 1_000_000);
      const timeoutMs = int("--timeout", opts.timeout, 100, 600_000);
      const owner = await findOwner(opts, { path });
      if (owner) {
        try {
          const devs = owner.bus.devices ?? [];
          process.stderr.write(
            `the agent owns ${describeBus(owner.bus)}: showing what it reads from this meter instead (stop the agent to sniff the line)\n`,
          );
          const results: { device: string; readings: Reading[] }[] = [];
          for (const d of devs)
            results.push(
              await owner.client.call<{ device: string; readings: Reading[] }>("read", {
                device: d.id,
              }),
            );
          if (opts.json) printJson({ ok: true, via: "agent", bus: owner.bus, devices: results });
          else
            for (const r of results)
              process.stdout.write(`${r.device}\n${renderReadings(r.readings)}\n`);
        } finally {
          owner.client.close();
        }
        process.exit(process.exitCode ?? 0);
      }
      const modes: TicMode[] =
        opts.mode === "auto" ? ["historic", "standard"] : [opts.mode as TicMode];
      let n = 0;
      let total = 0;
      for (const mode of modes) {
        if (!opts.json)
          process.stderr.write(
            dim(`listening on ${path} at ${baudOf[mode]} baud 7E1 (${mode} mode)…\n`),
          );
        total += await listen(path, mode, count - total, timeoutMs, async (f) => {
          n++;
          const ts = Date.now();
          process.stdout.write(
            opts.json
              ? `${JSON.stringify(await frameJson(f, ts))}\n`
              : `${await renderFrame(f, n, ts)}\n`,
          );
        });
        if (total > 0) break;
      }
      if (total === 0) {
        throw new EdgeError(
          ErrorCode.DeviceTimeout,
          `no TIC frame on ${path} within ${timeoutMs} ms${opts.mode === "auto" ? " at 1200 or 9600 baud" : ` in ${opts.mode} mode`} — check the wiring to the meter's I1/I2 terminals and that the TIC output is enabled`,
        );
      }
      process.exit(0);
    } catch (e) {
      fail(e, opts.json);
    }
  });
}
