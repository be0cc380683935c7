/**
 * The LoRaWAN driver inside the real daemon (`eclor-edge run`, built CLI), with a real Mosquitto
 * and the project's simulated concentrator and ABP device over UDP on loopback:
 *  - 20,000 PUSH_DATA with random gateway EUIs: `eclor-edge status` still answers (it broke with
 *    "line too long"), the gateway table stays capped and no fake reading reaches the broker;
 *  - `"confirmed": true` on MQTT cmd/write, and `eclor-edge write --confirmed`, give confirmed
 *    downlinks the device receives (issue 17.4: the key was refused as unknown);
 *  - `eclor-edge write DEV reset_frame_counters true` resets an ABP device's counters through
 *    the command router, audited (command_audit event upstream).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { build } from "../../drivers/lorawan/semtech.js";
import { SimDevice, SimRadio } from "../../sim/lorawan/device.js";
import { SimForwarder } from "../../sim/lorawan/forwarder.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { ABP } from "../helpers/lorawan.js";
import { Hypervisor } from "./commands-fixtures.js";

const GW = "gw-lora-agent";
const main = resolve(import.meta.dirname, "../../dist/agent/main.js");
const dir = mkdtempSync(join(tmpdir(), "eclor-lorawan-agent-"));
const sock = join(dir, "control.sock");
let broker: Mosquitto;
let hv: Hypervisor;
let agent: ChildProcess;
let log = "";
let udpPort = 0;
const radio = new SimRadio();
let fw: SimForwarder;
let dev: SimDevice;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function cli(args: string[]): Promise<Run> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [main, ...args], {
      env: { ...process.env, NO_COLOR: "1", ECLOR_EDGE_SOCKET: sock },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", rej);
    child.on("close", (code) => res({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  broker = await Mosquitto.start();
  udpPort = await freePort();
  const cfg = join(dir, "config.yaml");
  writeFileSync(
    cfg,
    stringify({
      version: 1,
      gateway: { id: GW },
      state_dir: join(dir, "state"),
      log: { level: "warn" },
      uplink: { url: broker.url, reconnect_min_ms: 100, reconnect_max_ms: 1000 },
      store: { flush_ms: 20 },
      control: { socket: sock },
      drivers: [
        {
          id: "lora",
          driver: "lorawan",
          listen: { host: "127.0.0.1", port: udpPort },
          gateways: { max: 4 },
          profiles: {
            co2: {
              codec: "milesight-am103",
              points: [
                { id: "co2", unit: "ppm" },
                { id: "report_interval", unit: "s", writable: true, min: 60, max: 64800 },
              ],
            },
          },
          devices: [
            {
              id: "co2-mairie",
              dev_eui: ABP.devEui,
              profile: "co2",
              activation: {
                type: "abp",
                dev_addr: ABP.devAddr,
                nwk_s_key: ABP.nwkSKey,
                app_s_key: ABP.appSKey,
              },
            },
          ],
        },
      ],
    }),
  );
  agent = spawn(process.execPath, [main, "run", "--config", cfg], {
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  agent.stdout?.setEncoding("utf8").on("data", (d: string) => (log += d));
  agent.stderr?.setEncoding("utf8").on("data", (d: string) => (log += d));
  await waitFor(
    () => {
      if (agent.exitCode !== null) throw new Error(`agent exited: ${log}`);
      return existsSync(sock);
    },
    30_000,
    "control socket",
  );
  hv = await Hypervisor.connect(broker.url, GW);
  await hv.waitReady();
  fw = new SimForwarder({
    server: { host: "127.0.0.1", port: udpPort },
    gatewayEui: "aa555a0000000000",
    onAir: radio.air,
  });
  await fw.start();
  radio.forwarders.push(fw);
  dev = new SimDevice(ABP, radio);
}, 90_000);

afterAll(async () => {
  await fw?.stop();
  await hv?.close();
  if (agent && agent.exitCode === null) {
    agent.kill("SIGTERM");
    await new Promise((r) => agent.once("exit", r));
  }
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const lora = async () => {
  const r = await cli(["status", "--json"]);
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout) as {
    drivers: { id: string; counters: Record<string, number>; devices: { id: string }[] }[];
  };
  return s.drivers.find((d) => d.id === "lora")!;
};

describe("LoRaWAN in the daemon", { timeout: 120_000 }, () => {
  it("status keeps working after 20,000 PUSH_DATA with random EUIs; no fake readings", async () => {
    const s = createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    const stat = { time: "2026-01-01 00:00:00 GMT", rxnb: 1, rxok: 1, rxfw: 1, ackr: 100 };
    for (let i = 0; i < 20_000; i++) {
      s.send(
        build.pushData(2, i & 0xffff, randomBytes(8).toString("hex"), { stat }),
        udpPort,
        "127.0.0.1",
      );
      // Let the kernel buffer drain now and then; losses are fine, this is a flood.
      if (i % 500 === 499) await new Promise((r) => setTimeout(r, 5));
    }
    s.close();
    await waitFor(
      async () => (await lora()).counters.gateway_table_full! > 1000,
      30_000,
      "flood counted",
    );
    const d = await lora();
    // The simulated concentrator + at most 3 flood EUIs (gateways.max 4).
    expect(d.devices.filter((x) => x.id.startsWith("gw-")).length).toBeLessThanOrEqual(4);
    const human = await cli(["status"]);
    expect(human.code, human.stderr).toBe(0);
    const names = [...hv.telemetry().values()].map((r) => (typeof r.n === "string" ? r.n : ""));
    const gwDevices = new Set(names.filter((n) => n.startsWith("gw-")).map((n) => n.split("/")[0]));
    expect(gwDevices.size).toBeLessThanOrEqual(4);
  });

  it("cmd/write with confirmed: true over MQTT queues a confirmed downlink", async () => {
    const r = await hv.request("write", {
      id: "lora-confirmed-1",
      device: "co2-mairie",
      point: "report_interval",
      value: 600,
      confirmed: true,
    });
    expect(r).toMatchObject({ ok: true });
    const dl = await dev.uplink(85, Buffer.from("077D2C01", "hex"));
    expect(dl).toMatchObject({ confirmed: true, fPort: 85 });
    expect(dl!.payload.toString("hex")).toBe("ff035802");
    await dev.uplink(85, Buffer.from("077D2D01", "hex"), { listen: false }); // carries the ACK
  });

  it("eclor-edge write --confirmed does the same from the CLI", async () => {
    const w = await cli(["write", "co2-mairie", "report_interval", "900", "--confirmed", "--json"]);
    expect(w.code, w.stderr).toBe(0);
    expect(JSON.parse(w.stdout)).toMatchObject({ ok: true, queued: true });
    const dl = await dev.uplink(85, Buffer.from("077D2E01", "hex"));
    expect(dl).toMatchObject({ confirmed: true });
    expect(dl!.payload.toString("hex")).toBe("ff038403");
  });

  it("reset_frame_counters through the command router, audited", async () => {
    const w = await cli(["write", "co2-mairie", "reset_frame_counters", "true", "--id", "reset-7"]);
    expect(w.code, w.stderr).toBe(0);
    await waitFor(
      () =>
        hv.received.some(
          (m) =>
            m.topic === `eclor/v1/${GW}/events` &&
            JSON.stringify(m.body).includes("lorawan_counters_reset"),
        ) &&
        hv.received.some(
          (m) =>
            m.topic === `eclor/v1/${GW}/events` &&
            JSON.stringify(m.body).includes("command_audit") &&
            JSON.stringify(m.body).includes("reset-7"),
        ),
      10_000,
      "reset and its audit upstream",
    );
    // A device restarted from 0 is accepted again.
    const fresh = new SimDevice(ABP, radio);
    const dl = await fresh.uplink(85, Buffer.from("077D0A00", "hex"), { confirmed: true });
    expect(dl).toMatchObject({ ack: true });
  });
});
