/**
 * Issue 14.5 (the router's part; float encodings are the Modbus codec's): against the real
 * daemon, a real Mosquitto and a Modbus simulator that records every write frame — a live
 * retained command is refused, invalid UTF-8 is refused (not decoded with U+FFFD), and a value
 * the driver refuses before the bus does not consume the command id. Nothing reaches the device
 * until the corrected resend, and each refusal is audited.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModbusSimulator, addSimDevice } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { Hypervisor, baseConfig } from "./commands-fixtures.js";
import { Daemon } from "./security-daemon.js";

const GW = "gw-sec-wr";
let broker: Mosquitto;
let sim: ModbusSimulator;
let hv: Hypervisor;
let daemon: Daemon;
const frames: { address: number; values: number[] }[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
  sim = new ModbusSimulator();
  addSimDevice(sim, 3, "dali-gateway");
  sim.addUnit(4, { afterWrite: (_t, address, values) => frames.push({ address, values }) });
  const port = await sim.listenTcp(0);
  const cfg = baseConfig(GW, broker.url, port);
  const drv = (cfg.drivers as { devices: unknown[] }[])[0]!;
  drv.devices.push({
    id: "meter",
    unit_id: 4,
    points: [
      {
        id: "sp",
        table: "holding",
        address: 10,
        type: "int16",
        scale: 0.5,
        writable: true,
        min: 0,
        max: 100,
      },
    ],
  });
  daemon = new Daemon(GW, cfg);
  hv = await Hypervisor.connect(broker.url, GW);
  await daemon.start(hv);
}, 90_000);

afterAll(async () => {
  await hv?.close();
  await daemon?.dispose();
  await sim?.close();
  await broker?.dispose();
});

const audit = (id: string) =>
  daemon.query<{ outcome: string; code: string | null }>(
    "SELECT outcome, code FROM cmd_audit WHERE command_id = ? ORDER BY rowid",
    id,
  );

describe("writes: retained, UTF-8, driver refusals (issue 14.5)", () => {
  it("refuses a live command published with retain", async () => {
    const r = await hv.request(
      "write",
      { id: "ret-1", device: "meter", point: "sp", value: 10 },
      { retain: true },
    );
    expect(r).toMatchObject({ ok: false, error: { code: "CommandRefused" } });
    expect(r.error?.message).toMatch(/retained command refused/);
    // Clear the broker's retained copy so no later connection sees it.
    await hv.client.publishAsync(`eclor/v1/${GW}/cmd/write`, "", { qos: 1, retain: true });
    expect(frames).toHaveLength(0);
  }, 30_000);

  it("refuses invalid UTF-8 instead of decoding it with U+FFFD", async () => {
    const raw = Buffer.concat([
      Buffer.from('{"id":"utf-'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('","device":"meter","point":"sp","value":10}'),
    ]);
    const r = await hv.request("write", {}, { raw });
    expect(r).toMatchObject({ ok: false, error: { code: "CommandInvalid" } });
    expect(r.error?.message).toMatch(/not valid UTF-8/);
    expect(frames).toHaveLength(0);
  }, 30_000);

  it("does not consume the id when the driver refuses the value: the corrected resend runs", async () => {
    const bad = await hv.request("write", {
      id: "drv-1",
      device: "meter",
      point: "sp",
      value: 0.3,
    });
    expect(bad).toMatchObject({ id: "drv-1", ok: false, error: { code: "CommandInvalid" } });
    expect(bad.error?.message).toMatch(/not a multiple of the point's scale/);
    expect(frames).toHaveLength(0);
    const good = await hv.request("write", { id: "drv-1", device: "meter", point: "sp", value: 5 });
    expect(good).toMatchObject({ id: "drv-1", ok: true });
    expect(good.duplicate).toBeUndefined();
    expect(frames).toEqual([{ address: 10, values: [10] }]);
    // Now the id is consumed: a repeat is a duplicate, nothing written again.
    const again = await hv.request("write", {
      id: "drv-1",
      device: "meter",
      point: "sp",
      value: 5,
    });
    expect(again).toMatchObject({ ok: true, duplicate: true });
    expect(frames).toHaveLength(1);
    expect(audit("drv-1").map((a) => a.outcome)).toEqual(["refused", "ok", "duplicate"]);
  }, 30_000);
});
