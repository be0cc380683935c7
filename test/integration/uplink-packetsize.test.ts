/**
 * One publish gate for every message (issue 15 item 4), against a real Mosquitto with
 * `max_packet_size 4096` (MQTT 5: announced in CONNACK; the broker disconnects a client that
 * sends a larger packet). A 26 kB inventory used to make the agent reconnect in a loop with 0
 * telemetry and an empty last_error: now it is split by devices, an oversized command response
 * becomes an error response, replay is chunked, and what cannot be sent is reported.
 */
import { afterAll, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { replayPayloads } from "../../agent/commands/history.js";
import { PublishGate } from "../../agent/uplink/gate.js";
import { inventoryPayloadSchema } from "../../agent/uplink/payloads.js";
import type { DeviceInfo, DriverContext } from "../../drivers/driver.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { hypervisor, testConfig, TestDriver } from "./uplink-fixtures.js";

const LIMIT = 4096;
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** 120 devices of 4 points (~26 kB of inventory), plus one device too large on its own. */
class BigInventoryDriver extends TestDriver {
  constructor(ctx: DriverContext) {
    super("big", ctx);
  }
  override inventory(): DeviceInfo[] {
    const devices = super.inventory();
    for (let i = 0; i < 120; i++)
      devices.push({
        id: `lamp-${i}`,
        driver: "big",
        kind: "test",
        points: ["power", "energy", "level", "on"].map((p) => ({
          id: p,
          type: "number" as const,
          writable: p === "level",
        })),
      });
    devices.push({
      id: "huge",
      driver: "big",
      kind: "test",
      points: Array.from({ length: 150 }, (_, i) => ({
        id: `register_${i}`,
        type: "number" as const,
        writable: false,
      })),
    });
    return devices;
  }
}

it("inventory split, responses refused with an error, replay chunked, failures reported", async () => {
  const broker = await Mosquitto.start({ extraConfig: `max_packet_size ${LIMIT}` });
  cleanups.push(() => broker.dispose());
  const { client, rx } = await hypervisor(broker.url);
  cleanups.push(() => client.endAsync(true));
  const parts = new Map<string, unknown>();
  client.on("message", (topic, payload) => {
    if (/\/inventory(\/\d+)?$/.test(topic)) parts.set(topic, JSON.parse(payload.toString()));
  });
  const config = testConfig(broker.url);
  let driver!: TestDriver;
  const agent = new Agent(config, {
    extraDrivers: [{ id: "big", create: (ctx) => (driver = new BigInventoryDriver(ctx)) }],
  });
  await agent.start();
  cleanups.push(() => agent.stop());
  await agent.uplink.whenConnected();
  const whole = JSON.stringify(agent.uplink.inventoryPayload());
  expect(whole.length).toBeGreaterThan(20_000);

  // The inventory arrives in parts, every one under the limit, together listing every device
  // that fits (all but "huge").
  const first = await waitFor(
    () => parts.get("eclor/v1/gw-test/inventory") as { parts?: number } | undefined,
    10_000,
    "inventory part 1",
  );
  expect(first.parts).toBeGreaterThan(1);
  await waitFor(() => parts.size === first.parts, 10_000, `${first.parts} inventory parts`);
  const ids = [...parts.values()].flatMap((p) =>
    inventoryPayloadSchema.parse(p).devices.map((d) => d.id),
  );
  expect(ids).toHaveLength(121); // meter1 + 120 lamps
  expect(ids).not.toContain("huge");
  expect(agent.uplink.status().last_error).toMatch(/device huge .*maximum packet size \(4096/);

  // Telemetry flows on the same connection: no reconnect loop.
  driver.produce(300);
  await waitFor(() => new Set(rx.telemetry).size === 300, 10_000, "telemetry");
  expect(agent.uplink.status().connects).toBe(1);

  // A command response over the limit becomes an error response that fits.
  agent.uplink.onCommand("big", (msg) => {
    void agent.uplink.respond(msg, { id: "b-1", ok: true, result: { blob: "x".repeat(10_000) } });
  });
  const answers: unknown[] = [];
  client.on("message", (topic, payload) => {
    if (topic.endsWith("/res/big")) answers.push(JSON.parse(payload.toString()));
  });
  await client.publishAsync("eclor/v1/gw-test/cmd/big", JSON.stringify({ id: "b-1" }), { qos: 1 });
  const answer = await waitFor(() => answers[0], 10_000, "the error response");
  expect(answer).toMatchObject({ id: "b-1", ok: false, error: { code: "ResponseTooLarge" } });

  // Replay payloads are chunked to the broker's limit, and published.
  const topic = agent.uplink.topics.telemetry;
  const replay = replayPayloads(agent.store, 1, 400, 500, agent.uplink.payloadRoom(topic));
  expect(replay.batches.length).toBeGreaterThan(1);
  for (const b of replay.batches) {
    expect(PublishGate.packetSize(topic, b.payload)).toBeLessThanOrEqual(LIMIT);
    expect(await agent.uplink.publish(topic, b.payload)).toBe(true);
  }
  expect(agent.uplink.connected).toBe(true);
  expect(agent.uplink.status().connects).toBe(1);
  expect(rx.invalid).toEqual([]);
});
