/**
 * The control plane inside the real daemon (`eclor-edge run`, built CLI): a command id written
 * once, the daemon killed with SIGKILL and started again, the same id → the stored response and
 * still exactly one write on the simulator.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ModbusSimulator, addSimDevice, type SimUnit } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { Hypervisor, baseConfig } from "./commands-fixtures.js";

const GW = "gw-daemon";
const cli = resolve(import.meta.dirname, "../../dist/agent/main.js");
let broker: Mosquitto;
let sim: ModbusSimulator;
let dali: SimUnit;
let hv: Hypervisor;
let daemon: ChildProcess | undefined;
let log = "";
const dir = mkdtempSync(join(tmpdir(), "eclor-cmd-daemon-"));
const configPath = join(dir, "config.yaml");
const writes = () => (dali.functions.get(6) ?? 0) + (dali.functions.get(16) ?? 0);

async function startDaemon(): Promise<void> {
  const mark = hv.received.length;
  daemon = spawn(process.execPath, [cli, "run", "--config", configPath], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  daemon.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  daemon.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  // Online once its retained state says so (after this start).
  await waitFor(
    () =>
      hv.received
        .slice(mark)
        .some(
          (m) =>
            m.topic === `eclor/v1/${GW}/state` && (m.body as { online?: boolean }).online === true,
        ),
    45_000,
    "the daemon online",
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}; daemon log: ${log.slice(-2000)}`);
  });
  // The command router attaches right after start; ping until it answers.
  await hv.waitReady();
}

function kill9(): Promise<void> {
  const p = daemon!;
  return new Promise((r) => {
    p.once("exit", () => r());
    p.kill("SIGKILL");
  });
}

beforeAll(async () => {
  broker = await Mosquitto.start();
  sim = new ModbusSimulator();
  dali = addSimDevice(sim, 3, "dali-gateway");
  const port = await sim.listenTcp(0);
  writeFileSync(
    configPath,
    stringify({
      ...baseConfig(GW, broker.url, port),
      state_dir: join(dir, "state"),
      control: { socket: join(dir, "control.sock") },
    }),
  );
  hv = await Hypervisor.connect(broker.url, GW);
});

afterAll(async () => {
  if (daemon && daemon.exitCode === null) await kill9();
  await hv?.close();
  await sim?.close();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("eclor-edge run: commands across a crash", () => {
  it("executes a command id once, also after kill -9 and a restart", async () => {
    await startDaemon();
    const before = writes();
    const first = await hv.request("write", {
      id: "crash-1",
      device: "dali",
      point: "lamp6_level",
      value: 35,
    });
    expect(first).toMatchObject({ id: "crash-1", ok: true });
    expect(dali.bank.holding[6]).toBe(35);
    await kill9();
    dali.bank.holding[6] = 80;
    await startDaemon();
    const again = await hv.request("write", {
      id: "crash-1",
      device: "dali",
      point: "lamp6_level",
      value: 35,
    });
    expect(again).toEqual({ ...first, duplicate: true });
    expect(writes()).toBe(before + 1);
    expect(dali.bank.holding[6]).toBe(80);
  }, 120_000); // two daemon starts (node + imports) take long on a loaded 2-core machine
});
