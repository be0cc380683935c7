/**
 * End to end with the real binaries: `eclor-edge sim modbus` (an SDM630 and a DALI gateway) →
 * `eclor-edge run` → a real Mosquitto → a subscriber playing the hypervisor. Values and units
 * arrive as configured; a dead meter becomes a device_offline event, its return device_online.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Mosquitto } from "../helpers/mosquitto.js";
import { freePort, waitFor } from "../helpers/ports.js";

const main = fileURLToPath(new URL("../../dist/agent/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "eclor-modbus-e2e-"));
let broker: Mosquitto;
let sim: ChildProcess;
let agent: ChildProcess;
let sub: MqttClient;
const records: Record<string, unknown>[] = [];
const events: Record<string, unknown>[] = [];
let agentLog = "";

beforeAll(async () => {
  broker = await Mosquitto.start();
  const modbusPort = await freePort();
  sim = spawn(
    process.execPath,
    [
      main,
      "sim",
      "modbus",
      "--listen",
      `127.0.0.1:${modbusPort}`,
      "--device",
      "12:eastron-sdm630",
      "--device",
      "3:dali-gateway",
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  let simOut = "";
  sim.stdout!.on("data", (d: Buffer) => (simOut += d.toString()));
  await waitFor(() => simOut.includes("Modbus TCP on"), 10_000, "simulator");
  const config = join(dir, "config.yaml");
  writeFileSync(
    config,
    `version: 1
gateway: { id: e2e-gw }
state_dir: ${dir}
control: { socket: ${join(dir, "control.sock")} }
uplink: { url: "${broker.url}" }
store: { flush_ms: 50 }
drivers:
  - id: cabinet
    driver: modbus
    transport: { type: tcp, host: 127.0.0.1, port: ${modbusPort} }
    poll_interval: 300ms
    timeout_ms: 200
    retries: 0
    offline_after: 2
    backoff_max: 1s
    devices:
      - { id: meter, unit_id: 12, profile: eastron-sdm630 }
      - { id: dali, unit_id: 3, profile: dali-gateway, profile_counts: { lamps: 2, groups: 1 } }
`,
  );
  sub = await mqtt.connectAsync(broker.url, { clientId: "e2e-hypervisor" });
  sub.on("message", (topic, payload) => {
    const body = JSON.parse(payload.toString()) as { records?: Record<string, unknown>[] };
    if (topic.endsWith("/telemetry")) records.push(...(body.records ?? []));
    if (topic.endsWith("/events")) events.push(...(body.records ?? [body]));
  });
  await sub.subscribeAsync("eclor/v1/e2e-gw/#", { qos: 1 });
  agent = spawn(process.execPath, [main, "run", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  agent.stdout!.on("data", (d: Buffer) => (agentLog += d.toString()));
  agent.stderr!.on("data", (d: Buffer) => (agentLog += d.toString()));
});

afterAll(async () => {
  for (const p of [agent, sim]) {
    if (p && p.exitCode === null)
      await new Promise<void>((r) => (p.once("exit", () => r()), p.kill("SIGTERM")));
  }
  await sub?.endAsync();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const latest = (n: string) => records.findLast((r) => r.n === n);

describe("simulator → agent → Mosquitto → hypervisor", () => {
  it("delivers values with their configured units", async () => {
    await waitFor(
      () => latest("meter/energy_total") && latest("dali/lamp1_on"),
      20_000,
      `telemetry (agent log: ${agentLog.slice(-500)})`,
    );
    const v = latest("meter/voltage_l1")!;
    expect(v.u).toBe("V");
    expect(v.v as number).toBeGreaterThan(220);
    expect(v.v as number).toBeLessThan(240);
    expect(latest("meter/energy_total")).toMatchObject({ u: "kWh" });
    expect(latest("meter/power_total")).toMatchObject({ u: "W" });
    expect(latest("meter/frequency")).toMatchObject({ u: "Hz" });
    expect(latest("dali/lamp0_level")).toMatchObject({ v: 100, u: "%" });
    expect(latest("dali/lamp1_on")).toMatchObject({ vb: true });
    expect(typeof latest("meter/voltage_l1")!.seq).toBe("number");
    await waitFor(
      () => events.filter((e) => e.type === "device_online").length >= 2,
      10_000,
      "online events",
    );
  });

  it("turns a dead meter into a device_offline event and its return into device_online", async () => {
    sim.stdin!.write("fault 12 no_answer\n");
    await waitFor(
      () => events.find((e) => e.type === "device_offline" && e.device === "meter"),
      15_000,
      "device_offline",
    );
    await waitFor(
      () => records.some((r) => r.n === "meter/voltage_l1" && r.q === "timeout"),
      5000,
      "timeout quality",
    );
    sim.stdin!.write("fault 12 none\n");
    await waitFor(
      () => events.filter((e) => e.type === "device_online" && e.device === "meter").length >= 2,
      15_000,
      "device_online again",
    );
    // Records carry a strictly increasing seq.
    const seqs = records.map((r) => r.seq as number);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });
});
