/**
 * `--direct` for `read` and `devices`: when the agent is stopped, build the device's driver from
 * the configuration file and use it from the CLI process — same driver, same profiles and
 * decoding — without the store, the uplink or the command router (so no writes here). Refused
 * while the agent runs: two masters on one bus garble each other's frames.
 */
import type { Driver, DriverState, Reading } from "../../drivers/driver.js";
import type { DeviceView } from "./devices.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type AgentOptions, resolveSocket } from "./agent-conn.js";
import { connectIfRunning } from "./bus-owner.js";
import { DEFAULT_CONFIG_PATH } from "../paths.js";

class MemoryState implements DriverState {
  private readonly m = new Map<string, unknown>();
  get<T = unknown>(key: string): T | undefined {
    return this.m.get(key) as T | undefined;
  }
  set(key: string, value: unknown): void {
    this.m.set(key, value);
  }
  delete(key: string): void {
    this.m.delete(key);
  }
  keys(prefix = ""): string[] {
    return [...this.m.keys()].filter((k) => k.startsWith(prefix));
  }
}

async function refuseIfAgentRuns(opts: AgentOptions): Promise<void> {
  const socket = await resolveSocket(opts);
  const client = await connectIfRunning(socket);
  if (!client) return;
  client.close();
  throw new EdgeError(
    ErrorCode.BusOwnedByAgent,
    `the agent is running (${socket}): drop --direct, it reads through the agent`,
  );
}

/**
 * Build (not start) every enabled driver of the configuration file; with `only`, just the
 * driver of that device, configured with that device alone — a direct read must not poll the
 * other devices of the bus (issue 16 item 4).
 */
async function buildDrivers(opts: AgentOptions, only?: string): Promise<Driver[]> {
  const [{ loadConfigFile }, { createDriver }, { pino }] = await Promise.all([
    import("../../config/load.js"),
    import("../../drivers/index.js"),
    import("pino"),
  ]);
  const config = loadConfigFile(opts.config ?? DEFAULT_CONFIG_PATH);
  const logger = pino({ level: "silent" });
  const drivers: Driver[] = [];
  for (const all of config.drivers) {
    if (!all.enabled) continue;
    let dc = all;
    if (only !== undefined) {
      const list = (all as { devices?: { id: string }[] }).devices ?? [];
      const devices = list.filter((d) => d.id === only);
      if (devices.length === 0) continue;
      dc = { ...all, devices } as typeof all;
    }
    drivers.push(
      await createDriver(dc, {
        logger,
        emit: () => undefined,
        event: () => undefined,
        state: new MemoryState(),
      }),
    );
  }
  return drivers;
}

function unknownDevice(id: string, drivers: Driver[]): EdgeError {
  const known = drivers.flatMap((d) => d.inventory().map((x) => x.id));
  return new EdgeError(
    ErrorCode.DeviceUnknown,
    `unknown device "${id}" in the configuration (known: ${known.join(", ") || "none"})`,
    { device: id, known },
  );
}

export async function directDevices(
  opts: AgentOptions,
  only?: string,
): Promise<{ devices: DeviceView[] }> {
  await refuseIfAgentRuns(opts);
  const drivers = await buildDrivers(opts);
  const devices = drivers.flatMap((d) => d.inventory()).filter((d) => !only || d.id === only);
  if (only && devices.length === 0) throw unknownDevice(only, drivers);
  return { devices: devices.map((d) => ({ ...d, values: [] })) };
}

export async function directRead(
  opts: AgentOptions,
  device: string,
  points: string[],
): Promise<{ device: string; readings: Reading[] }> {
  await refuseIfAgentRuns(opts);
  const drivers = await buildDrivers(opts, device);
  const driver = drivers.find((d) => d.inventory().some((x) => x.id === device));
  if (!driver) throw unknownDevice(device, await buildDrivers(opts));
  const info = driver.inventory().find((x) => x.id === device)!;
  const missing = points.find((p) => !info.points.some((x) => x.id === p));
  if (missing) {
    throw new EdgeError(
      ErrorCode.PointUnknown,
      `device "${device}" has no point "${missing}" (points: ${info.points.map((x) => x.id).join(", ")})`,
    );
  }
  await driver.start();
  try {
    return { device, readings: await driver.read(device, points.length ? points : undefined) };
  } finally {
    await driver.stop();
  }
}
