/**
 * Remote configuration of one device of a Modbus bus, applied in place (Driver.reconfigure):
 * two simulated devices on one TCP simulator, a real Mosquitto, the agent in-process. Changing
 * one device's point map restarts that device only — the other one's poller never stops: it is
 * the same poller object, still polling, and it sends no offline/online event — and the result
 * says so. (Whether its rhythm stays even is a timing figure, for bench/, not for a test that must
 * pass on a loaded machine.) A change to the bus settings still restarts the whole driver, which the same observations
 * detect (they are what would fail if the in-place path restarted everything).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DriverEvent, Reading } from "../../drivers/driver.js";
import { addSimDevice, type SimUnit } from "../../sim/modbus/index.js";
import { waitFor } from "../helpers/ports.js";
import { type Rig, baseConfig, disposeRig, startRig } from "./commands-fixtures.js";

const GW = "gw-devices-live";
let rig: Rig;
let m1Unit: SimUnit;
const readings: Reading[] = [];
const events: DriverEvent[] = [];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form test edits of a config object
type Loose = Record<string, any>;
const holding = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `r${i}`, table: "holding", address: i }));
const cfg = (m2Points = 1, url = rig.broker.url, port = rig.simPort): Loose => {
  const c: Loose = baseConfig(GW, url, port);
  c.drivers[0].id = "bus";
  c.drivers[0].poll_interval = "100ms";
  c.drivers[0].devices = [
    { id: "m1", unit_id: 1, points: holding(2) },
    { id: "m2", unit_id: 2, points: holding(m2Points) },
  ];
  return c;
};

beforeAll(async () => {
  rig = await startRig(
    GW,
    (sim) => {
      m1Unit = addSimDevice(sim, 1, "registers");
      addSimDevice(sim, 2, "registers");
    },
    (url, port) => cfg(1, url, port),
  );
  rig.run.agent.onRecord((recs) => {
    for (const r of recs) {
      if (r.reading) readings.push(r.reading);
      if (r.event) events.push(r.event);
    }
  });
});

afterAll(() => rig && disposeRig(rig));

/** The last message the hypervisor received on `<prefix>/<gw>/<stream>`. */
function lastBody<T>(stream: string): T | undefined {
  const all = rig.hv.received.filter((m) => m.topic === `eclor/v1/${GW}/${stream}`);
  return all.at(-1)?.body as T | undefined;
}

/** Online/offline events of `device` at or after `since`. */
const onOff = (device: string, since: number) =>
  events
    .filter((e) => e.device === device && e.ts >= since)
    .filter((e) => e.type === "device_online" || e.type === "device_offline");

/**
 * The driver's poller object for m1 (ModbusDriver keeps one ModbusDevice per device and creates a
 * new one when it restarts the device or the driver); private fields, hence the casts.
 */
function m1Poller(): unknown {
  const drivers = (rig.run.agent as unknown as { driverList: { id: string }[] }).driverList;
  const bus = drivers.find((d) => d.id === "bus") as unknown as { devices: Map<string, unknown> };
  const p = bus.devices.get("m1");
  expect(p).toBeDefined();
  return p;
}

describe("config/set of one device on a shared bus", () => {
  it("restarts only the changed device; the other keeps its poller, polling, without an event", async () => {
    await waitFor(() => readings.some((r) => r.device === "m2"), 10_000, "m2 polled");
    const m1Requests = m1Unit.requests;
    const m1Before = m1Poller();
    const stateBefore = lastBody<{ config_version: string }>("state")!.config_version;
    const t0 = Date.now();
    const r = await rig.hv.request(
      "config/set",
      { id: "dev-1", config: cfg(3) },
      { timeoutMs: 20_000 },
    );
    expect(r).toMatchObject({
      ok: true,
      result: {
        applied: true,
        restarted: [],
        reconfigured: [{ driver: "bus", devices: ["m2"] }],
        started: [],
        stopped: [],
      },
    });
    // m2 runs with its new point map…
    await waitFor(
      () => readings.some((x) => x.device === "m2" && x.point === "r2" && x.ts >= t0),
      5000,
      "m2/r2 polled",
    );
    expect(
      rig.run.agent
        .inventory()
        .find((d) => d.id === "m2")
        ?.points.map((p) => p.id),
    ).toEqual(["r0", "r1", "r2"]);
    // …the hypervisor sees the new inventory and the new config_version in the retained state…
    await waitFor(
      () =>
        lastBody<{ devices: { id: string; points: unknown[] }[] }>("inventory")?.devices.find(
          (d) => d.id === "m2",
        )?.points.length === 3,
      5000,
      "new inventory",
    );
    const stateAfter = lastBody<{ config_version: string }>("state")!.config_version;
    expect(stateAfter).toMatch(/^[0-9a-f]{12}$/);
    expect(stateAfter).not.toBe(stateBefore);
    // …it was really restarted (a new poller announces itself)…
    expect(onOff("m2", t0).map((e) => e.type)).toEqual(["device_online"]);
    // …while m1 was never interrupted: the very same poller (a restart creates a new one), never
    // stopped, still polling the simulator after the change, and no event. Conditions, not a
    // measured rhythm: a loaded machine delays polls without restarting anything.
    expect(m1Poller()).toBe(m1Before);
    expect((m1Before as { stopped: boolean }).stopped).toBe(false);
    const tDone = Date.now();
    await waitFor(
      () => readings.some((x) => x.device === "m1" && x.point === "r0" && x.ts > tDone),
      10_000,
      "m1 polled after the change",
    );
    expect(m1Unit.requests).toBeGreaterThan(m1Requests);
    expect(onOff("m1", t0)).toEqual([]);
  }, 30_000);

  it("a change of the bus settings restarts the whole driver (and the same checks see it)", async () => {
    const next = cfg(3);
    next.drivers[0].timeout_ms = 300;
    const before = m1Poller();
    const t0 = Date.now();
    const r = await rig.hv.request(
      "config/set",
      { id: "dev-2", config: next },
      { timeoutMs: 20_000 },
    );
    expect(r).toMatchObject({
      ok: true,
      result: { applied: true, restarted: ["bus"], reconfigured: [] },
    });
    await waitFor(() => onOff("m1", t0).length > 0, 5000, "m1 restarted");
    expect(onOff("m1", t0).map((e) => e.type)).toEqual(["device_online"]);
    // The identity check of the first test sees a restart: m1 has a new poller.
    expect(m1Poller()).not.toBe(before);
  }, 30_000);
});
