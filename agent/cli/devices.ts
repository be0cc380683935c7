/**
 * `eclor-edge devices [DEVICE]`, `read DEVICE [POINT…]`, `write DEVICE POINT VALUE`: what each
 * device reads now, through the running agent (which owns the buses). Writes go through the
 * agent's command router and are audited as a local technician action.
 */
import type { Command } from "commander";
import type { DeviceInfo, DeviceStatus, Reading } from "../../drivers/driver.js";
import type { StoredReading, WriteOutcome } from "../control/backend.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type AgentOptions, withAgent, withAgentOptions } from "./agent-conn.js";
import { ago, formatQuality, formatValue, isGood, table } from "./format.js";
import { bold, dim, fail, green, printJson, red } from "./output.js";

export type DeviceView = DeviceInfo & { status?: DeviceStatus; values: StoredReading[] };

export function renderDevices(devices: DeviceView[], now = Date.now()): string {
  if (devices.length === 0) return "no devices configured";
  const out: string[] = [];
  for (const d of devices) {
    const st = d.status ? (d.status.online ? green("online") : red("OFFLINE")) : dim("unknown");
    out.push(`${bold(d.id)}  ${d.kind} on ${d.driver}${d.name ? ` · ${d.name}` : ""} · ${st}`);
    const latest = new Map(d.values.map((v) => [v.point, v] as const));
    const rows = d.points.map((p) => {
      const v = latest.get(p.id);
      return [
        p.id,
        v ? formatValue(v) : dim("—"),
        v ? formatQuality(v.quality, v.detail) : dim("no value yet"),
        v ? ago(v.ts, now) : "",
        p.writable ? "rw" : "r",
      ];
    });
    out.push(table(["POINT", "VALUE", "QUALITY", "AGE", "ACCESS"], rows, "  "));
  }
  return out.join("\n");
}

export function renderReadings(readings: Reading[]): string {
  const rows = readings.map((r) => [r.point, formatValue(r), formatQuality(r.quality, r.detail)]);
  return table(["POINT", "VALUE", "QUALITY"], rows);
}

export function registerDeviceCommands(program: Command): void {
  withAgentOptions(
    program
      .command("devices")
      .description("List devices with their latest stored values, units and quality")
      .argument("[device]", "only this device")
      .option("--direct", "agent stopped: list the devices of the config file (no values)")
      .option("--json", "machine-readable output"),
  ).action(async (device: string | undefined, opts: AgentOptions & { direct?: boolean }) => {
    try {
      if (opts.direct) {
        const { directDevices } = await import("./direct.js");
        const r = await directDevices(opts, device);
        if (opts.json) printJson(r);
        else process.stdout.write(`${renderDevices(r.devices)}\n`);
        return;
      }
      const r = await withAgent(
        opts,
        (c) => c.call<{ devices: DeviceView[] }>("devices", device ? { device } : {}),
        { direct: true },
      );
      if (opts.json) printJson(r);
      else process.stdout.write(`${renderDevices(r.devices)}\n`);
    } catch (e) {
      fail(e, opts.json);
    }
  });

  withAgentOptions(
    program
      .command("read")
      .description("Read a device now, through its driver (exit 1 if a point could not be read)")
      .argument("<device>", "device id (see `eclor-edge devices`)")
      .argument("[points...]", "point ids (default: all points of the device)")
      .option("--direct", "agent stopped: read with the driver built from the config file (-c)")
      .option("--json", "machine-readable output"),
  ).action(async (device: string, points: string[], opts: AgentOptions & { direct?: boolean }) => {
    try {
      const r = opts.direct
        ? await (await import("./direct.js")).directRead(opts, device, points)
        : await withAgent(
            opts,
            (c) =>
              c.call<{ device: string; readings: Reading[] }>("read", {
                device,
                ...(points.length ? { points } : {}),
              }),
            { direct: true },
          );
      const ok = r.readings.length > 0 && r.readings.every((x) => isGood(x.quality));
      if (opts.json) printJson({ ok, ...r });
      else process.stdout.write(`${renderReadings(r.readings)}\n`);
      if (!ok) process.exitCode = 1;
      // A driver used directly may leave a serial port open: end the process.
      if (opts.direct) (await import("./modbus-args.js")).exitAfterBus();
    } catch (e) {
      fail(e, opts.json);
    }
  });

  withAgentOptions(
    program
      .command("write")
      .description(
        "Write a value to a device point through the agent's command router (allow-list, range, audit as local technician)",
      )
      .argument("<device>", "device id")
      .argument("<point>", "writable point id (ACCESS rw in `eclor-edge devices DEVICE`)")
      .argument("<value>", "value: a number, true/false (on/off), or text")
      .option("--id <command-id>", "command id, to make a retried write idempotent")
      .option(
        "--confirmed",
        "LoRaWAN: send a confirmed downlink (the device acknowledges it; lorawan_downlink_acked)",
      )
      .option("--json", "machine-readable output"),
  ).action(
    async (
      device: string,
      point: string,
      value: string,
      opts: AgentOptions & { id?: string; confirmed?: boolean },
    ) => {
      try {
        const r = await withAgent(opts, (c) =>
          c.call<WriteOutcome & { value: unknown }>("write", {
            device,
            point,
            value,
            ...(opts.id ? { commandId: opts.id } : {}),
            ...(opts.confirmed ? { confirmed: true } : {}),
          }),
        );
        if (!r.ok) {
          throw new EdgeError(
            ErrorCode.CommandFailed,
            `write ${device}/${point} failed${r.detail ? `: ${r.detail}` : ""}`,
            {
              ...r,
            },
          );
        }
        if (opts.json) printJson(r);
        else {
          const parts = [`${green("ok")} ${device}/${point} ← ${String(r.value)}`];
          if (r.queued) parts.push("queued for the next downlink");
          if (r.readBack !== undefined) parts.push(`read back ${String(r.readBack)}`);
          if (r.duplicate) parts.push(`already done (command ${r.commandId})`);
          process.stdout.write(`${parts.join(" · ")}\n${dim(`command ${r.commandId}`)}\n`);
        }
      } catch (e) {
        fail(e, opts.json);
      }
    },
  );
}
