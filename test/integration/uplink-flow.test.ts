/**
 * Store-and-forward end to end, in process: test driver → pipeline → real SQLite store → real
 * Mosquitto → a hypervisor-side subscriber.
 */
import type { MqttClient } from "mqtt";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import type { Config } from "../../config/schema.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import {
  hypervisor,
  testConfig,
  TestDriver,
  waitForCount,
  type Received,
} from "./uplink-fixtures.js";

let broker: Mosquitto;
let persistDir: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  // Persistence on, so the hypervisor's session (and the messages queued for it) survives the
  // broker restarts below; otherwise whatever the agent publishes before the test's subscriber
  // has reconnected would be lost by the broker, not by the agent.
  persistDir = mkdtempSync(join(tmpdir(), "eclor-persist-"));
  chmodSync(persistDir, 0o777); // mosquitto started as root drops to the `mosquitto` user
  broker = await Mosquitto.start({
    extraConfig: `persistence true\npersistence_location ${persistDir}/`,
  });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await broker.dispose();
  rmSync(persistDir, { recursive: true, force: true });
});

async function startAgent(config: Config): Promise<{ agent: Agent; driver: TestDriver }> {
  let driver!: TestDriver;
  const agent = new Agent(config, {
    extraDrivers: [{ id: "test", create: (ctx) => (driver = new TestDriver("test", ctx)) }],
  });
  await agent.start();
  cleanups.push(async () => {
    await agent.stop();
    rmSync(config.state_dir, { recursive: true, force: true });
  });
  return { agent, driver };
}

async function startHypervisor(): Promise<{ client: MqttClient; rx: Received }> {
  const hv = await hypervisor(broker.url);
  cleanups.push(() => hv.client.endAsync(true));
  return hv;
}

function expectOnceInOrder(rx: Received, n: number): void {
  expect(rx.invalid).toEqual([]);
  expect(rx.telemetry).toHaveLength(n); // exactly once
  expect(rx.telemetry).toEqual(Array.from({ length: n }, (_, i) => i + 1)); // in seq order
}

describe("uplink", () => {
  it("steady flow: every reading arrives once, in seq order, with state and inventory", async () => {
    const { rx } = await startHypervisor();
    const { agent, driver } = await startAgent(
      testConfig(broker.url, { uplink: { batch_size: 50 } }),
    );
    await agent.uplink.whenConnected();
    for (let i = 0; i < 20; i++) {
      driver.produce(100);
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitForCount(rx, 2000, 10_000);
    await new Promise((r) => setTimeout(r, 200)); // would-be duplicates have time to show up
    expectOnceInOrder(rx, 2000);
    expect(rx.messages.every((m) => m.length <= 50)).toBe(true);
    expect(rx.state[0]).toMatchObject({
      online: true,
      version: expect.any(String),
      config_version: expect.any(String),
    });
    expect(rx.inventory[0]).toMatchObject({
      gateway: { id: "gw-test" },
      devices: [{ id: "meter1", points: [{ id: "power", unit: "W" }] }],
    });
    await waitFor(() => agent.store.stats().pending.live === 0, 5000, "outbox drained");
    expect(agent.uplink.status()).toMatchObject({ connected: true, published_records: 2000 });
  });

  it("broker stopped while 10,000 readings are produced, then restarted: all arrive, none lost", async () => {
    const { rx } = await startHypervisor();
    const { agent, driver } = await startAgent(testConfig(broker.url));
    await agent.uplink.whenConnected();
    driver.produce(10);
    await waitForCount(rx, 10, 5000);
    await broker.stop();
    await waitFor(() => !agent.uplink.connected, 5000, "agent notices the broker is gone");
    for (let i = 0; i < 100; i++) driver.produce(100); // acquisition does not wait
    await waitFor(
      () => agent.store.stats().pending.live === 10_000,
      5000,
      "10,000 readings committed",
    );
    expect(agent.uplink.status().connected).toBe(false);
    await broker.start();
    await waitForCount(rx, 10_010, 20_000);
    expect(rx.invalid).toEqual([]);
    // After the outage, the backlog arrives in seq order, each reading at least once.
    const distinct = [...new Set(rx.telemetry)].sort((a, b) => a - b);
    expect(distinct).toEqual(Array.from({ length: 10_010 }, (_, i) => i + 1));
    const after = rx.telemetry.slice(rx.telemetry.indexOf(11));
    expect(after).toEqual([...after].sort((a, b) => a - b));
    await waitFor(() => agent.store.stats().pending.live === 0, 5000, "outbox drained");
  });

  it("events go before telemetry; a clean stop publishes the offline state", async () => {
    const { rx } = await startHypervisor();
    const config = testConfig(broker.url);
    const { agent, driver } = await startAgent(config);
    await agent.uplink.whenConnected();
    await broker.stop();
    await waitFor(() => !agent.uplink.connected, 5000, "disconnected");
    driver.produce(3000);
    agent.store.appendEvent({
      ts: Date.now(),
      type: "device_offline",
      severity: "warning",
      device: "meter1",
      message: "no answer for 30 s",
    });
    await waitFor(() => agent.store.stats().pending.event === 1, 5000, "event committed");
    await broker.start();
    await waitFor(
      () => rx.events.length === 1 && new Set(rx.telemetry).size === 3000,
      10_000,
      "everything",
    );
    const eventSeq = rx.events[0]!.seq;
    expect(eventSeq).toBe(3001);
    // The event (seq 3001) was published before the older telemetry backlog.
    expect(rx.order[0]).toBe("e:3001");
    expect(rx.telemetry).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    await agent.stop();
    await waitFor(
      () => rx.state.some((s) => (s as { online: boolean; reason?: string }).reason === "shutdown"),
      5000,
      "offline state",
    );
  });
});
