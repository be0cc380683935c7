/**
 * Automatic fallback for devices that refuse reads across unmapped registers: against strict
 * simulated units (exception 2 to any read touching an unmapped address), a coalesced read
 * spanning a gap is split and retried in the same poll, one event says so, and later polls use
 * the split reads. The simulator's per-function counters are snapshotted at every emitted poll:
 * a device's polls are sequential, so the difference between two snapshots is one poll.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Driver } from "../../drivers/driver.js";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { ModbusSimulator, type SimUnit } from "../../sim/modbus/index.js";
import { waitFor } from "../helpers/ports.js";
import { driverConfig, recorder, type Recorder } from "./modbus-helpers.js";

let sim: ModbusSimulator;
let port: number;
let driver: Driver | undefined;

/** Holding 100..140 with gaps of 9, 13 and 14 registers: one read with the default max_gap 16. */
const gappy = [
  { id: "a", table: "holding", address: 100 },
  { id: "b", table: "holding", address: 110, type: "uint32" },
  { id: "c", table: "holding", address: 125 },
  { id: "d", table: "holding", address: 140 },
  { id: "e", table: "input", address: 0 },
  { id: "f", table: "input", address: 1 },
];

function unitWithMap(id: number, strict: boolean): SimUnit {
  const u = sim.addUnit(id, {}, { strict });
  u.bank.set("holding", 100, 1);
  u.bank.set("holding", 110, 0);
  u.bank.set("holding", 111, 2);
  u.bank.set("holding", 125, 3);
  u.bank.set("holding", 140, 4);
  u.bank.set("input", 0, 5);
  u.bank.set("input", 1, 6);
  return u;
}

interface Poll {
  fc3: number;
  fc4: number;
  good: boolean;
}

const counters = (unit: number, good: boolean): Poll => {
  const f = sim.unit(unit).functions;
  return { fc3: f.get(3) ?? 0, fc4: f.get(4) ?? 0, good };
};

/**
 * Start a driver; record, per device, its unit's FC 3/FC 4 counters before the first poll and at
 * each emitted poll (one unit per device).
 */
function start(
  rec: Recorder,
  devices: { id: string; unit_id: number; points: unknown[] }[],
): Map<string, Poll[]> {
  const polls = new Map(devices.map((d) => [d.id, [counters(d.unit_id, true)]]));
  const emit = rec.ctx.emit.bind(rec.ctx);
  rec.ctx.emit = (readings) => {
    const dev = devices.find((d) => d.id === readings[0]?.device);
    if (dev)
      polls.get(dev.id)!.push(
        counters(
          dev.unit_id,
          readings.every((r) => r.quality === "good"),
        ),
      );
    emit(readings);
  };
  driver = createModbusDriver(
    driverConfig({
      transport: { type: "tcp", host: "127.0.0.1", port },
      poll_interval: "50ms",
      timeout_ms: 2000,
      retries: 0,
      devices,
    }),
    rec.ctx,
  );
  return polls;
}

/** Requests of each poll (differences between snapshots). */
const perPoll = (p: Poll[]): Poll[] =>
  p.slice(1).map((x, i) => ({ ...x, fc3: x.fc3 - p[i]!.fc3, fc4: x.fc4 - p[i]!.fc4 }));

const splitEvents = (rec: Recorder, device?: string) =>
  rec.events.filter(
    (e) => e.type === "modbus_plan_split" && (device === undefined || e.device === device),
  );

beforeAll(async () => {
  sim = new ModbusSimulator();
  port = await sim.listenTcp(0);
});
afterEach(async () => {
  await driver?.stop();
  driver = undefined;
});
afterAll(async () => {
  await sim.close();
});

describe("modbus: automatic split of reads a device refuses across gaps", () => {
  it("splits a refused gappy read in the same poll, says so once, and keeps the split reads", async () => {
    const rec = recorder();
    unitWithMap(31, true);
    const polls = start(rec, [{ id: "fussy", unit_id: 31, points: gappy }]);
    await driver!.start();
    await waitFor(() => polls.get("fussy")!.length > 4, 5000, "4 polls");
    const p = perPoll(polls.get("fussy")!);
    // First poll: the refused coalesced read (100..140), then 4 reads of contiguous registers.
    expect(p[0]).toEqual({ fc3: 1 + 4, fc4: 1, good: true });
    for (const later of p.slice(1)) expect(later).toEqual({ fc3: 4, fc4: 1, good: true });
    const first = rec.readings.slice(0, gappy.length);
    expect(first.map((r) => [r.point, r.value, r.quality])).toEqual([
      ["a", 1, "good"],
      ["b", 2, "good"],
      ["c", 3, "good"],
      ["d", 4, "good"],
      ["e", 5, "good"],
      ["f", 6, "good"],
    ]);
    const ev = splitEvents(rec);
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ device: "fussy", severity: "warning" });
    expect(ev[0]!.message).toBe(
      "device fussy refused a read of holding 100..140 spanning unmapped registers (exception 2): reading its points separately from now on; set max_gap: 0 for it to skip this probe",
    );
    // The probe is not an error of the device.
    expect(driver!.status().devices[0]).toMatchObject({ online: true, errorCount: 0 });
    // Only the probe was refused; on-demand reads are planned without gaps too (no new probe).
    expect(driver!.status().counters?.exceptions).toBe(1);
    const now = await driver!.read("fussy", ["a", "b"]); // 100..111 spans a gap
    expect(now.map((r) => [r.value, r.quality])).toEqual([
      [1, "good"],
      [2, "good"],
    ]);
    expect(driver!.status().counters?.exceptions).toBe(1);
    expect(splitEvents(rec)).toHaveLength(1);
  });

  it("keeps coalescing the same map on a device that accepts gaps", async () => {
    const rec = recorder();
    unitWithMap(32, false);
    const polls = start(rec, [{ id: "lenient", unit_id: 32, points: gappy }]);
    await driver!.start();
    await waitFor(() => polls.get("lenient")!.length > 3, 5000, "3 polls");
    for (const p of perPoll(polls.get("lenient")!))
      expect(p).toEqual({ fc3: 1, fc4: 1, good: true });
    expect(splitEvents(rec)).toHaveLength(0);
  });

  it("reports exception 2 on a read without a gap, and on a split read that still refuses", async () => {
    const rec = recorder();
    const u = sim.addUnit(33, {}, { strict: true });
    u.bank.set("holding", 300, 30);
    u.bank.set("holding", 400, 40);
    const polls = start(rec, [
      // 300..301, no gap: 301 does not exist on the device.
      {
        id: "ghost",
        unit_id: 33,
        points: [
          { id: "x", table: "holding", address: 300 },
          { id: "y", table: "holding", address: 301 },
        ],
      },
    ]);
    await driver!.start();
    await waitFor(() => polls.get("ghost")!.length > 3, 5000, "3 polls");
    for (const p of perPoll(polls.get("ghost")!))
      expect(p).toEqual({ fc3: 1, fc4: 0, good: false });
    for (const point of ["x", "y"])
      expect(rec.last("ghost", point)).toMatchObject({ value: null, quality: "exception" });
    expect(rec.last("ghost", "x")!.detail).toMatch(
      /^illegal data address \(exception 2\) \(unit 33, holding 300\.\.301, /,
    );
    expect(splitEvents(rec)).toHaveLength(0);
    await driver!.stop();

    // 400..410 spans a gap; after the split, 410 alone is refused: only it carries the exception.
    const rec2 = recorder();
    const polls2 = start(rec2, [
      {
        id: "half",
        unit_id: 33,
        points: [
          { id: "m", table: "holding", address: 400 },
          { id: "n", table: "holding", address: 410 },
        ],
      },
    ]);
    await driver!.start();
    await waitFor(() => polls2.get("half")!.length > 3, 5000, "3 polls");
    const p = perPoll(polls2.get("half")!);
    expect(p[0]!.fc3).toBe(1 + 2);
    for (const later of p.slice(1)) expect(later.fc3).toBe(2);
    expect(rec2.last("half", "m")).toMatchObject({ value: 40, quality: "good" });
    expect(rec2.last("half", "n")).toMatchObject({ value: null, quality: "exception" });
    expect(rec2.last("half", "n")!.detail).toMatch(/holding 410\.\.410/);
    expect(splitEvents(rec2)).toHaveLength(1);
  });
});
