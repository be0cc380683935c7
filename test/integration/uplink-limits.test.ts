/**
 * Link limits against a real Mosquitto: the broker's Maximum Packet Size (MQTT 5 CONNACK) is
 * respected by splitting batches, a half-open link (broker frozen with SIGSTOP: the TCP
 * connection stays up, nothing answers) is detected by the keepalive and the agent reconnects,
 * and MQTT 3.1.1 works too.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { backoffDelay } from "../../agent/uplink/connection.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { hypervisor, testConfig, TestDriver } from "./uplink-fixtures.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(brokerExtra: string, uplink: Record<string, unknown> = {}) {
  const broker = await Mosquitto.start({ extraConfig: brokerExtra });
  cleanups.push(() => broker.dispose());
  const hv = await hypervisor(broker.url);
  cleanups.push(() => hv.client.endAsync(true));
  const config = testConfig(broker.url, { uplink });
  let driver!: TestDriver;
  const agent = new Agent(config, {
    extraDrivers: [{ id: "t", create: (ctx) => (driver = new TestDriver("t", ctx)) }],
  });
  await agent.start();
  cleanups.push(() => agent.stop());
  await agent.uplink.whenConnected();
  return { broker, agent, driver, rx: hv.rx };
}

it("splits batches to respect the broker's maximum packet size", async () => {
  const { agent, driver, rx } = await setup("max_packet_size 2000");
  driver.produce(500); // one default batch would be ~35 kB
  await waitFor(() => new Set(rx.telemetry).size === 500, 15_000, "all readings");
  expect(rx.telemetry).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
  expect(rx.messages.length).toBeGreaterThan(10);
  expect(agent.uplink.status().last_error).toBeUndefined();
});

it("detects a half-open link by the keepalive and reconnects", async () => {
  const { broker, agent, driver, rx } = await setup("", { keepalive_s: 5 });
  const pid = execFileSync("pgrep", ["-f", join(broker.dir, "mosquitto.conf")], {
    encoding: "utf8",
  })
    .trim()
    .split("\n")[0]!;
  process.kill(Number(pid), "SIGSTOP");
  let resumed = false;
  cleanups.push(() => {
    if (!resumed) process.kill(Number(pid), "SIGCONT");
  });
  // Nobody answers PINGREQ: mqtt.js closes the link after keepalive × 1.5 or so.
  await waitFor(() => !agent.uplink.connected, 20_000, "half-open link detected");
  driver.produce(100); // acquisition goes on meanwhile
  process.kill(Number(pid), "SIGCONT");
  resumed = true;
  await waitFor(() => agent.uplink.connected, 20_000, "reconnected");
  await waitFor(() => new Set(rx.telemetry).size === 100, 15_000, "readings after reconnect");
  expect(agent.uplink.status().connects).toBeGreaterThanOrEqual(2);
});

it("MQTT 3.1.1 (protocol_version 4) works the same", async () => {
  const { driver, rx } = await setup("", { protocol_version: 4 });
  driver.produce(300);
  await waitFor(() => new Set(rx.telemetry).size === 300, 15_000, "all readings");
  expect(rx.invalid).toEqual([]);
});

it("reconnect delays grow exponentially, are capped, and are jittered", () => {
  const min = 1000;
  const max = 60_000;
  expect(backoffDelay(0, min, max, () => 1)).toBe(1000);
  expect(backoffDelay(3, min, max, () => 1)).toBe(8000);
  expect(backoffDelay(20, min, max, () => 1)).toBe(60_000);
  expect(backoffDelay(20, min, max, () => 0.5)).toBe(30_000);
  expect(backoffDelay(20, min, max, () => 0)).toBe(1000); // never below the minimum
});
