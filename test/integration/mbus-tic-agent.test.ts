/**
 * End to end: TIC and M-Bus simulators on socat pty pairs → the agent (drivers from the config,
 * pipeline, real SQLite store) → a real Mosquitto → a hypervisor-side subscriber that checks
 * every telemetry payload against the published schema and the units of the readings.
 */
import mqtt from "mqtt";
import { closeSync, constants, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { telemetryPayloadSchema } from "../../agent/uplink/payloads.js";
import { runMbusSim } from "../../sim/mbus/run.js";
import { runTicSim } from "../../sim/tic/run.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { PtyPair } from "../helpers/socat.js";
import { testConfig } from "./uplink-fixtures.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** CI 76h golden frame (m-bus-parser test suite, see drivers/mbus/testcases/SOURCE.md). */
const ci76 = join(repoRoot, "drivers/mbus/testcases/m-bus-parser/ci76_lsb_frame.hex");
/** The historic-mode groups of Enedis' specification (drivers/tic/testcases/tic.json). */
const ticGolden = Buffer.concat([
  Buffer.from([0x02]),
  ...(
    JSON.parse(readFileSync(join(repoRoot, "drivers/tic/testcases/tic.json"), "utf8")) as {
      historicGroups: string[];
    }
  ).historicGroups.map((g) => Buffer.from(`\n${g}\r`, "latin1")),
  Buffer.from([0x03]),
]);

let broker: Mosquitto;
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
});
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await broker.dispose();
});

describe("serial meters end to end", { timeout: 120_000 }, () => {
  it("TIC and M-Bus readings reach the broker as SenML with the right units", async () => {
    const tic = await PtyPair.open();
    const mbus = await PtyPair.open();
    cleanups.push(
      () => tic.close(),
      () => mbus.close(),
    );
    const ticSim = runTicSim({
      serial: tic.a,
      mode: "standard",
      intervalMs: 200,
      meterId: "041876097467",
    });
    const mbusSim = runMbusSim({ serial: mbus.a, baud: 2400, meters: [`3=${ci76}`] });
    // A second TIC line carrying the specification's frame as it is written, bytes untouched.
    const tic2 = await PtyPair.open();
    cleanups.push(() => tic2.close());
    // Non-blocking: once the agent stops reading, a full pty buffer must not block the test.
    const fd = openSync(tic2.a, constants.O_WRONLY | constants.O_NONBLOCK);
    const writer = setInterval(() => {
      try {
        writeSync(fd, ticGolden);
      } catch {
        // EAGAIN: nobody reads right now; the next frame will do.
      }
    }, 200);
    cleanups.push(() => {
      clearInterval(writer);
      closeSync(fd);
    });
    cleanups.push(
      () => ticSim.stop(),
      () => mbusSim.stop(),
    );

    const records: { n: string; u?: string; v?: number; vs?: string; q?: string }[] = [];
    const invalid: string[] = [];
    const hv = mqtt.connect(broker.url, { protocolVersion: 5 });
    cleanups.push(() => hv.endAsync(true));
    hv.on("message", (topic, payload) => {
      if (!topic.endsWith("/telemetry")) return;
      const p = telemetryPayloadSchema.safeParse(JSON.parse(payload.toString()));
      if (!p.success) invalid.push(p.error.message);
      else records.push(...p.data.records);
    });
    await new Promise<void>((r) => hv.once("connect", () => r()));
    await hv.subscribeAsync("eclor/v1/gw-test/#", { qos: 1 });

    const config = testConfig(broker.url, {
      drivers: [
        {
          id: "tic1",
          driver: "tic",
          path: tic.b,
          mode: "standard",
          devices: [{ id: "linky", meter_id: "041876097467" }],
        },
        {
          id: "tic2",
          driver: "tic",
          path: tic2.b,
          mode: "auto",
          devices: [{ id: "cbe", meter_id: "021528603314" }],
        },
        {
          id: "mbus1",
          driver: "mbus",
          path: mbus.b,
          timeout_ms: 1000,
          poll_interval: "1s",
          devices: [
            { id: "heat", address: 1 },
            { id: "water", secondary: "87654321" },
            { id: "heat76", address: 3 },
          ],
        },
      ],
    });
    const agent = new Agent(config);
    cleanups.push(async () => {
      await agent.stop();
      rmSync(config.state_dir, { recursive: true, force: true });
    });
    await agent.start();
    await agent.uplink.whenConnected();

    const find = (n: string) => records.find((r) => r.n === n);
    await waitFor(
      () =>
        [
          "linky/east",
          "linky/sinsts",
          "linky/urms1",
          "heat/energy",
          "heat/flow_temperature",
          "water/volume",
          "heat76/flow_temperature",
          "cbe/hchc",
        ].every(find),
      45_000,
      "telemetry from both drivers",
    );
    expect(invalid).toEqual([]);
    expect(find("linky/east")).toMatchObject({ u: "Wh", v: expect.any(Number) });
    expect(find("linky/sinsts")).toMatchObject({ u: "VA" });
    expect(find("linky/urms1")).toMatchObject({ u: "V" });
    expect(find("linky/irms1")).toMatchObject({ u: "A" });
    expect(find("linky/ltarf")?.vs).toMatch(/HEURE/);
    // Enedis-NOI-CPT_02E's example frame: indexes in Wh, apparent power in VA, the period.
    expect(find("cbe/hchc")).toMatchObject({ u: "Wh", v: 723392 });
    expect(find("cbe/hchp")).toMatchObject({ u: "Wh", v: 1742238 });
    expect(find("cbe/papp")).toMatchObject({ u: "VA", v: 180 });
    expect(find("cbe/ptec")).toMatchObject({ vs: "HP.." });
    expect(find("heat/energy")).toMatchObject({ u: "Wh" });
    expect(find("heat/energy")!.v!).toBeGreaterThanOrEqual(1_234_000);
    expect(find("heat/flow_temperature")).toMatchObject({ u: "Cel", v: 65.2 });
    expect(find("heat/volume")).toMatchObject({ u: "m3" });
    expect(find("water/volume")).toMatchObject({ u: "m3" });
    // CI 76h: MSB-first data (71.8 °C; read least significant byte first it was 180.7 °C).
    expect(find("heat76/flow_temperature")).toMatchObject({ u: "Cel", v: 71.8 });
    expect(find("heat76/return_temperature")).toMatchObject({ u: "Cel", v: 65.3 });
    expect(
      agent
        .inventory()
        .map((d) => d.id)
        .sort(),
    ).toEqual(["cbe", "heat", "heat76", "linky", "water"]);
    expect(agent.driverStatus().find((s) => s.id === "tic1")!.detail).toMatch(
      /meter 041876097467 in standard mode/,
    );
  });
});
