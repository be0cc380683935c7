/**
 * The driver against the project's simulator over real TCP sockets: polling with profiles,
 * coalescing, every fault kind, offline/online events, recovery after a simulator restart,
 * writes with read-back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isEdgeError } from "../../core/errors.js";
import type { Driver } from "../../drivers/driver.js";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { addSimDevice, ModbusSimulator, parseFault } from "../../sim/modbus/index.js";
import { waitFor } from "../helpers/ports.js";
import { driverConfig, recorder, type Recorder } from "./modbus-helpers.js";

let sim: ModbusSimulator;
let port: number;
let driver: Driver | undefined;

async function startSim(p = 0): Promise<number> {
  sim = new ModbusSimulator();
  addSimDevice(sim, 12, "eastron-sdm630");
  addSimDevice(sim, 3, "dali-gateway");
  return sim.listenTcp(p);
}

function start(rec: Recorder, extra: Record<string, unknown> = {}, devices?: unknown[]): Driver {
  const cfg = driverConfig({
    transport: { type: "tcp", host: "127.0.0.1", port },
    poll_interval: "100ms",
    timeout_ms: 150,
    retries: 0,
    offline_after: 2,
    backoff_max: "300ms",
    devices: devices ?? [
      { id: "meter", unit_id: 12, profile: "eastron-sdm630" },
      { id: "dali", unit_id: 3, profile: "dali-gateway", profile_counts: { lamps: 8, groups: 4 } },
    ],
    ...extra,
  });
  driver = createModbusDriver(cfg, rec.ctx);
  return driver;
}

beforeAll(async () => {
  port = await startSim();
});
afterEach(async () => {
  await driver?.stop();
  driver = undefined;
  for (const id of sim.units.keys()) sim.setFault(id, { kind: "none" });
});
afterAll(async () => {
  await sim.close();
});

describe("modbus driver against the simulator (TCP)", () => {
  it("polls profiles with units, in the planned number of requests", async () => {
    const rec = recorder();
    // A generous timeout: on a loaded machine a 150 ms timeout would skip reads and skew the count.
    const d = start(rec, { timeout_ms: 2000 });
    const before = sim.unit(12).requests;
    await d.start();
    await waitFor(
      () => rec.last("meter", "energy_total") && rec.last("dali", "lamp7_on"),
      3000,
      "first poll",
    );
    const v = rec.last("meter", "voltage_l1")!;
    expect(v.quality).toBe("good");
    expect(v.unit).toBe("V");
    expect(v.value as number).toBeGreaterThan(220);
    expect(v.value as number).toBeLessThan(240);
    expect(rec.last("meter", "energy_import")).toMatchObject({ unit: "kWh", quality: "good" });
    expect(rec.last("meter", "frequency")!.value as number).toBeCloseTo(50, 0);
    expect(rec.last("dali", "lamp0_level")).toMatchObject({
      value: 100,
      unit: "%",
      quality: "good",
    });
    expect(rec.last("dali", "lamp3_lamp_failure")).toMatchObject({ value: true });
    expect(rec.last("dali", "lamp2_on")).toMatchObject({ value: true });
    expect(rec.last("dali", "bus_power")).toMatchObject({ value: true });
    expect(
      rec.events
        .filter((e) => e.type === "device_online")
        .map((e) => e.device)
        .sort(),
    ).toEqual(["dali", "meter"]);
    // SDM630 profile: 26 points in 4 reads per poll (0x00..0x4B split by the profile's
    // max_registers 40, 0xC8..0xCD, 0x156).
    await waitFor(
      () =>
        rec.readings.filter((r) => r.device === "meter" && r.point === "voltage_l1").length >= 3,
      3000,
      "3 polls",
    );
    await d.stop();
    const polls = rec.readings.filter(
      (r) => r.device === "meter" && r.point === "voltage_l1",
    ).length;
    expect(sim.unit(12).requests - before).toBe(polls * 4);
  });

  it("reports exceptions in words and keeps the device online", async () => {
    const rec = recorder();
    const d = start(rec);
    await d.start();
    await waitFor(() => rec.last("meter", "voltage_l1")?.quality === "good", 3000, "good");
    sim.setFault(12, parseFault("illegal_address"));
    await waitFor(
      () => rec.last("meter", "voltage_l1")?.quality === "exception",
      3000,
      "exception",
    );
    expect(rec.last("meter", "voltage_l1")!.detail).toMatch(
      /^illegal data address \(exception 2\)/,
    );
    sim.setFault(12, parseFault("busy"));
    await waitFor(
      () =>
        /server device busy \(exception 6\)/.test(rec.last("meter", "voltage_l1")?.detail ?? ""),
      10_000,
      "busy, after its retries",
    );
    expect(rec.events.some((e) => e.type === "device_offline")).toBe(false);
  });

  it("retries a read answered 'busy' (exception 6) with backoff instead of reporting it", async () => {
    const rec = recorder();
    const d = start(rec, { busy_retries: 3, busy_backoff: "100ms" });
    await d.start();
    await waitFor(() => rec.last("meter", "voltage_l1")?.quality === "good", 3000, "good");
    const n = rec.readings.length;
    const busy = () => d.status().counters?.exceptions ?? 0;
    const before = busy();
    sim.setFault(12, parseFault("busy"));
    await waitFor(() => busy() > before, 3000, "a busy answer");
    sim.setFault(12, { kind: "none" });
    await waitFor(
      () =>
        rec.readings.slice(n).filter((r) => r.device === "meter" && r.point === "voltage_l1")
          .length >= 2,
      5000,
      "two more polls",
    );
    expect(rec.readings.slice(n).filter((r) => r.quality === "exception")).toEqual([]);
  });

  it("times out a silent device, declares it offline, and back online when it answers", async () => {
    const rec = recorder();
    const d = start(rec);
    await d.start();
    await waitFor(() => rec.last("meter", "voltage_l1")?.quality === "good", 3000, "good");
    sim.setFault(12, parseFault("no_answer"));
    await waitFor(
      () => rec.events.find((e) => e.type === "device_offline" && e.device === "meter"),
      5000,
      "offline event",
    );
    expect(rec.readings.some((r) => r.device === "meter" && r.quality === "timeout")).toBe(true);
    await waitFor(
      () => rec.last("meter", "voltage_l1")?.quality === "offline",
      5000,
      "offline readings",
    );
    // The other device on the same connection kept its rate meanwhile.
    const daliGood = rec.readings.filter(
      (r) => r.device === "dali" && r.point === "lamp0_level" && r.quality === "good",
    ).length;
    sim.setFault(12, { kind: "none" });
    await waitFor(
      () =>
        rec.events.filter((e) => e.type === "device_online" && e.device === "meter").length === 2,
      5000,
      "online again",
    );
    await waitFor(() => rec.last("meter", "voltage_l1")?.quality === "good", 3000, "good again");
    expect(
      rec.readings.filter(
        (r) => r.device === "dali" && r.point === "lamp0_level" && r.quality === "good",
      ).length,
    ).toBeGreaterThan(daliGood);
    expect(d.status().devices.find((x) => x.id === "meter")).toMatchObject({ online: true });
  });

  it("classifies a truncated answer and a wrong unit id as frame errors; a late answer as a timeout", async () => {
    const rec = recorder();
    const d = start(rec);
    await d.start();
    await waitFor(() => rec.last("meter", "voltage_l1")?.quality === "good", 3000, "good");
    sim.setFault(12, parseFault("bad_crc"));
    await waitFor(
      () => rec.last("meter", "voltage_l1")?.quality === "frame_error",
      3000,
      "frame error",
    );
    sim.setFault(12, parseFault("wrong_unit"));
    await waitFor(
      () =>
        /answer from unit 13 to a request to unit 12/.test(
          rec.last("meter", "voltage_l1")?.detail ?? "",
        ),
      3000,
      "wrong unit",
    );
    expect(rec.last("meter", "voltage_l1")!.quality).toBe("frame_error");
    sim.setFault(12, parseFault("late:400"));
    // Frame errors count as failed polls, so the meter may be offline by now: the detail tells.
    await waitFor(
      () => /^no answer before the timeout/.test(rec.last("meter", "voltage_l1")?.detail ?? ""),
      3000,
      "late → timeout",
    );
    sim.setFault(12, { kind: "none" });
    // Late answers still in flight must not be taken for answers to later requests.
    await waitFor(() => rec.last("meter", "voltage_l1")?.quality === "good", 3000, "good again");
    const v = rec.last("meter", "voltage_l1")!.value as number;
    expect(v).toBeGreaterThan(220);
  });

  it("resumes by itself after the simulator restarts", async () => {
    const rec = recorder();
    const d = start(rec);
    await d.start();
    await waitFor(() => rec.last("meter", "voltage_l1")?.quality === "good", 3000, "good");
    await sim.close();
    await waitFor(
      () =>
        rec.last("meter", "voltage_l1")?.quality === "comm_error" ||
        rec.last("meter", "voltage_l1")?.quality === "offline",
      5000,
      "comm error",
    );
    await waitFor(() => rec.events.some((e) => e.type === "device_offline"), 5000, "offline");
    await startSim(port);
    const n = rec.readings.length;
    await waitFor(
      () => rec.readings.length > n && rec.last("meter", "voltage_l1")?.quality === "good",
      10_000,
      "recovered",
    );
    expect(d.status().detail).toMatch(/connected to 127\.0\.0\.1/);
  });

  it("does not freeze when the connection drops with a transaction in flight", async () => {
    const rec = recorder();
    // A long timeout, so only the link's own handling of the drop can unblock the queue in time.
    const d = start(rec, { timeout_ms: 5000 });
    await d.start();
    await waitFor(() => rec.last("meter", "voltage_l1")?.quality === "good", 3000, "good");
    sim.setFault(12, parseFault("no_answer"));
    sim.setFault(3, parseFault("no_answer"));
    await new Promise((r) => setTimeout(r, 200)); // a read is now waiting for its answer
    await sim.close();
    await startSim(port);
    const n = rec.readings.length;
    await waitFor(
      () => rec.readings.length > n && rec.last("meter", "voltage_l1")?.quality === "good",
      3000,
      "polling resumed well before the 5 s timeout",
    );
    expect(
      rec.readings.some(
        (r) => r.quality === "comm_error" && /connection lost/.test(r.detail ?? ""),
      ),
    ).toBe(true);
  });

  it("writes with FC 6/16, verifies by read-back, and refuses what it must", async () => {
    const rec = recorder();
    const d = start(rec, {}, [
      {
        id: "dali",
        unit_id: 3,
        profile: "dali-gateway",
        profile_counts: { lamps: 8, groups: 4 },
        // Overrides the profile's point (no max here), so the gateway's own check answers.
        points: [{ id: "lamp1_level", table: "holding", address: 1, unit: "%", writable: true }],
      },
      {
        id: "plc",
        unit_id: 7,
        byte_order: "CDAB",
        points: [
          {
            id: "setpoint",
            table: holding(),
            address: 10,
            type: "float32",
            writable: true,
            unit: "Cel",
          },
          { id: "count", table: holding(), address: 20, type: "int32", writable: true },
          { id: "flag", table: holding(), address: 30, type: "bit", bit: 3, writable: true },
          {
            id: "mode",
            table: holding(),
            address: 31,
            writable: true,
            labels: { "0": "off", "2": "auto" },
          },
          { id: "relay", table: "coil", address: 5, writable: true },
          { id: "name", table: holding(), address: 40, type: "string", length: 3, writable: true },
          { id: "ro", table: holding(), address: 50 },
        ],
      },
    ]);
    const plc = sim.addUnit(7);
    plc.bank.map("holding", 0, 100);
    plc.bank.map("coil", 0, 10);
    plc.bank.holding[30] = 0b0001;
    await d.start();
    // Lamp level: FC 6 then read-back, which the gateway honours.
    expect(
      await d.write({ device: "dali", point: "lamp1_level", value: 40, verify: true }),
    ).toEqual({ ok: true, readBack: 40 });
    expect(sim.unit(3).bank.input[101]).toBe(0b100);
    // Group 2 (lamps 2, 6): the gateway sets its lamps; a failed lamp (3) ignores writes.
    expect((await d.write({ device: "dali", point: "group2_level", value: 0 })).ok).toBe(true);
    expect(sim.unit(3).bank.holding[6]).toBe(0);
    const failed = await d.write({ device: "dali", point: "lamp3_level", value: 80, verify: true });
    expect(failed).toMatchObject({ ok: false, readBack: 0 });
    expect(failed.detail).toMatch(/acknowledged the write but reads back 0/);
    // The device refuses 150 % (the router would too): exception 3, in words.
    const refused = await d.write({ device: "dali", point: "lamp1_level", value: 150 });
    expect(refused.ok).toBe(false);
    expect(refused.detail).toMatch(/illegal data value \(exception 3\)/);
    // Typed values in the device's order (CDAB): float32 21.5 = 0x41AC0000 → [0x0000, 0x41AC].
    expect(await d.write({ device: "plc", point: "setpoint", value: 21.5, verify: true })).toEqual({
      ok: true,
      readBack: 21.5,
    });
    expect([plc.bank.holding[10], plc.bank.holding[11]]).toEqual([0x0000, 0x41ac]);
    expect((await d.write({ device: "plc", point: "count", value: -2, verify: true })).ok).toBe(
      true,
    );
    expect([plc.bank.holding[20], plc.bank.holding[21]]).toEqual([0xfffe, 0xffff]);
    expect((await d.write({ device: "plc", point: "flag", value: true, verify: true })).ok).toBe(
      true,
    );
    expect(plc.bank.holding[30]).toBe(0b1001);
    expect(
      (await d.write({ device: "plc", point: "mode", value: "auto", verify: true })).readBack,
    ).toBe(2);
    expect(
      (await d.write({ device: "plc", point: "relay", value: true, verify: true })).readBack,
    ).toBe(true);
    expect(plc.bank.coil[5]).toBe(1);
    expect(
      (await d.write({ device: "plc", point: "name", value: "P-12", verify: true })).readBack,
    ).toBe("P-12");
    // Refusals are errors naming the problem; nothing reaches the device.
    const reqs = plc.requests;
    for (const [point, value, re] of [
      ["ro", 1, /not writable/],
      ["count", 1.5, /integer/],
      ["mode", "turbo", /off, auto/],
      ["flag", 2, /true\/false/],
      ["name", "TOO-LONG-NAME", /longer than 6/],
      ["nope", 1, /has no point nope/],
    ] as const) {
      const e = await d.write({ device: "plc", point, value }).catch((x: unknown) => x);
      expect(isEdgeError(e), String(point)).toBe(true);
      expect((e as Error).message).toMatch(re);
    }
    expect(plc.requests).toBe(reqs);
  });

  it("refuses a value the point's encoding cannot hold before anything reaches the bus", async () => {
    const rec = recorder();
    const d = start(rec, {}, [
      {
        id: "meter",
        unit_id: 12,
        points: [
          { id: "sp", table: "holding", address: 500, type: "float32", writable: true },
          { id: "big", table: "holding", address: 510, type: "int64", writable: true },
        ],
      },
    ]);
    await d.start();
    await waitFor(() => rec.last("meter", "sp")?.quality === "good", 3000, "good");
    await d.stop(); // no polls: any request the simulator sees now would be the write
    const before = sim.requests;
    for (const [point, value, why] of [
      ["sp", 1e300, /meter\/sp: 1e\+300 is outside the float32 range ±3\.4028234663852886e\+38/],
      ["sp", 3.5e38, /meter\/sp: 3\.5e\+38 is outside the float32 range/],
      ["big", 2 ** 63, /meter\/big: 9223372036854776000 is outside the int64 range/],
    ] as const) {
      const err: unknown = await d
        .write({ device: "meter", point, value })
        .catch((e: unknown) => e);
      expect(isEdgeError(err) && err.message).toMatch(why);
    }
    expect(sim.requests).toBe(before);
  });

  it("write_multiple uses FC 15/16 for single values", async () => {
    const rec = recorder();
    const u = sim.addUnit(8);
    u.bank.map("holding", 0, 10);
    u.bank.map("coil", 0, 10);
    const d = start(rec, {}, [
      {
        id: "fussy",
        unit_id: 8,
        write_multiple: true,
        points: [
          { id: "r", table: "holding", address: 1, writable: true },
          { id: "c", table: "coil", address: 2, writable: true },
        ],
      },
    ]);
    await d.start();
    expect((await d.write({ device: "fussy", point: "r", value: 9, verify: true })).ok).toBe(true);
    expect((await d.write({ device: "fussy", point: "c", value: true, verify: true })).ok).toBe(
      true,
    );
    expect(u.bank.holding[1]).toBe(9);
    expect(u.bank.coil[2]).toBe(1);
    expect([...u.functions.keys()].sort((a, b) => a - b)).toEqual([1, 3, 15, 16]);
  });

  it("pipelines transactions on one connection with concurrency > 1", async () => {
    const rec = recorder();
    for (const id of [21, 22, 23]) sim.addUnit(id).bank.set("holding", 0, id * 10);
    sim.setFault(21, parseFault("late:120")); // slow, but within the timeout
    const d = start(
      rec,
      { transport: { type: "tcp", host: "127.0.0.1", port, concurrency: 4 }, timeout_ms: 1000 },
      [
        { id: "slow", unit_id: 21, points: [{ id: "v", table: "holding", address: 0 }] },
        { id: "fast1", unit_id: 22, points: [{ id: "v", table: "holding", address: 0 }] },
        { id: "fast2", unit_id: 23, points: [{ id: "v", table: "holding", address: 0 }] },
      ],
    );
    await d.start();
    await waitFor(
      () => rec.readings.filter((r) => r.device === "slow").length >= 3,
      5000,
      "slow polls",
    );
    const count = (dev: string) => rec.readings.filter((r) => r.device === dev).length;
    // Answers are matched to their transactions: every value is its own unit's.
    for (const r of rec.readings)
      expect(r).toMatchObject({
        quality: "good",
        value: { slow: 210, fast1: 220, fast2: 230 }[r.device],
      });
    // The slow unit does not hold the others back: they poll every 100 ms, it every ~120 ms.
    expect(count("fast1")).toBeGreaterThanOrEqual(count("slow"));
    expect(d.status().devices.every((x) => x.online)).toBe(true);
  });

  it("max_gap 0 avoids unmapped registers on a strict device (no probe, no split)", async () => {
    const rec = recorder();
    const strict = sim.addUnit(9, {}, { strict: true });
    strict.bank.set("holding", 0, 11);
    strict.bank.set("holding", 5, 55);
    const pts = [
      { id: "a", table: "holding", address: 0 },
      { id: "b", table: "holding", address: 5 },
    ];
    const d = start(rec, {}, [
      { id: "gappy", unit_id: 9, points: pts },
      { id: "careful", unit_id: 9, max_gap: 0, points: pts },
    ]);
    await d.start();
    await waitFor(() => rec.last("gappy", "a") && rec.last("careful", "b"), 3000, "polls");
    expect(rec.last("gappy", "a")).toMatchObject({ value: 11, quality: "good" }); // split: see modbus-split
    expect(rec.last("careful", "a")).toMatchObject({ value: 11, quality: "good" });
    expect(rec.last("careful", "b")).toMatchObject({ value: 55, quality: "good" });
    const splits = rec.events.filter((e) => e.type === "modbus_plan_split");
    expect(splits.map((e) => e.device)).toEqual(["gappy"]);
  });
});

function holding(): "holding" {
  return "holding";
}
