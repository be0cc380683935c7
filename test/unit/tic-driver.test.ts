/**
 * The TIC driver's events and what it publishes, on a fake serial transport with fake timers
 * (the real pty is in test/integration/tic-serial.test.ts): a silent line in auto mode, the
 * device going offline and online, and corruption the 6-bit checksum cannot see (groups with a
 * valid checksum but an unknown label or an impossible value, as fuzzing produced them).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DriverEvent, Reading } from "../../drivers/driver.js";
import type { RawSerial, SerialFactory } from "../../drivers/serial/port.js";
import { TicDriver } from "../../drivers/tic/index.js";
import { ticDriverSchema } from "../../drivers/tic/schema.js";
import { ticFrame, ticGroup } from "../../sim/tic/wire.js";

function fakeLine() {
  const line = { data: undefined as ((c: Buffer) => void) | undefined, opens: 0 };
  const factory: SerialFactory = async () => {
    line.opens++;
    const raw: RawSerial = {
      write: async () => undefined,
      close: async () => undefined,
      onData: (cb) => (line.data = cb),
      onClose: () => undefined,
    };
    return raw;
  };
  return { line, factory };
}

function rig(over: Record<string, unknown> = {}) {
  const readings: Reading[] = [];
  const events: DriverEvent[] = [];
  const silent = { info: () => undefined, warn: () => undefined, debug: () => undefined };
  const ctx = {
    logger: silent as never,
    emit: (r: Reading[]) => readings.push(...r),
    event: (e: DriverEvent) => events.push(e),
    state: { get: () => undefined, set: () => undefined, delete: () => undefined, keys: () => [] },
  };
  const cfg = ticDriverSchema.parse({
    id: "tic1",
    driver: "tic",
    path: "/dev/ttyTIC",
    devices: [{ id: "linky" }],
    ...over,
  });
  const { line, factory } = fakeLine();
  const d = new TicDriver(cfg, ctx, factory);
  return { d, line, readings, events };
}

const historic = (groups: [string, string][]) =>
  ticFrame(groups.map(([l, v]) => ticGroup("historic", l, v)));
const standard = (groups: [string, string, string?][]) =>
  ticFrame(groups.map(([l, v, h]) => ticGroup("standard", l, v, h)));
const base: [string, string][] = [
  ["ADCO", "021528603314"],
  ["OPTARIF", "HC.."],
  ["HCHC", "000723392"],
  ["PTEC", "HP.."],
  ["PAPP", "00180"],
];
const count = (events: DriverEvent[], type: string) => events.filter((e) => e.type === type).length;

afterEach(() => {
  vi.useRealTimers();
});

describe("TIC driver on a fake line", () => {
  it("a silent line in auto mode: one event per cause, repeated at most every 6 h", async () => {
    vi.useFakeTimers();
    const { d, events } = rig({ mode: "auto", no_frame_timeout: "10s" });
    await d.start();
    await vi.advanceTimersByTimeAsync(24 * 3600_000);
    const n = count(events, "tic_no_valid_frame");
    // Before: one event every 10 s, 8,640 a day. Now the first, then once per 6 h.
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(5);
    expect(d.status().counters!.speedSwitches).toBeGreaterThan(1000); // it kept searching
    expect(count(events, "device_offline")).toBe(1);
    await d.stop();
  });

  it("device_online with the first valid frame, device_offline once when it stops", async () => {
    vi.useFakeTimers();
    const { d, line, events } = rig({ mode: "historic", no_frame_timeout: "10s" });
    await d.start();
    await vi.advanceTimersByTimeAsync(100);
    line.data!(historic(base));
    expect(count(events, "device_online")).toBe(1);
    await vi.advanceTimersByTimeAsync(3600_000);
    expect(count(events, "device_offline")).toBe(1);
    expect(count(events, "tic_no_valid_frame")).toBe(1);
    line.data!(historic(base));
    expect(count(events, "device_online")).toBe(2);
    expect(count(events, "tic_line_ok")).toBe(1);
    await d.stop();
  });

  it("groups with a valid checksum but an unknown label or impossible value are not published", async () => {
    vi.useFakeTimers();
    const { d, line, readings } = rig({ mode: "historic" });
    await d.start();
    await vi.advanceTimersByTimeAsync(100);
    line.data!(
      historic([
        ...base.filter(([l]) => l !== "PTEC"),
        ["PAP", "00180"], // PAPP with a byte lost: a label historic mode does not have
        ["HCH", "000723392"],
        ["PTEC", "HPIS"], // not a tariff period
        ["OPTARIF", "XYZ."],
        ["DEMAIN", "ROUX"],
        ["HHPHC", "Q"],
        ["SINSTS", "00180"], // a standard-mode label in a historic frame
      ]),
    );
    const points = readings.map((r) => r.point);
    expect(points).toEqual(expect.arrayContaining(["adco", "hchc", "papp"]));
    for (const p of ["pap", "hch", "ptec", "demain", "hhphc", "sinsts"])
      expect(points).not.toContain(p);
    expect(readings.filter((r) => r.point === "optarif").map((r) => r.value)).toEqual(["HC.."]);
    expect(d.status().counters).toMatchObject({ unknownLabels: 3 });
    // The known labels with impossible values are dropped groups.
    expect(d.status().counters!.droppedGroups).toBeGreaterThanOrEqual(4);
    await d.stop();
  });

  it("standard mode: unknown labels counted, PTEC-like enums and lengths checked", async () => {
    vi.useFakeTimers();
    const { d, line, readings } = rig({ mode: "standard" });
    await d.start();
    await vi.advanceTimersByTimeAsync(100);
    line.data!(
      standard([
        ["ADSC", "041876097467"],
        ["DATE", "", "E250716103423"],
        ["EAST", "000723392"],
        ["EAS", "000723392"],
        ["NTARF", "42"], // index numbers are 01..10
        ["VTIC", "2"],
        ["SINSTS", "00180"],
      ]),
    );
    const points = readings.map((r) => r.point);
    expect(points).toEqual(expect.arrayContaining(["adsc", "date", "east", "sinsts"]));
    for (const p of ["eas", "ntarf", "vtic"]) expect(points).not.toContain(p);
    expect(d.status().counters).toMatchObject({ unknownLabels: 1 });
    await d.stop();
  });

  it("a burst of forged frames: one event per cause, no phantom point", async () => {
    vi.useFakeTimers();
    const { d, line, readings, events } = rig({
      mode: "historic",
      devices: [{ id: "linky", meter_id: "021528603314" }],
    });
    await d.start();
    await vi.advanceTimersByTimeAsync(100);
    line.data!(historic(base));
    const before = events.length;
    for (let k = 0; k < 1000; k++) {
      // Another meter, a standard-mode frame, and checksum-valid garbage labels, interleaved.
      line.data!(historic([["ADCO", "999999999999"], ...base.slice(1)]));
      line.data!(
        standard([
          ["ADSC", "021528603314"],
          ["EAST", "000000001"],
        ]),
      );
      line.data!(
        historic([
          ["X" + String(k % 10), "1"],
          ["PTEC", "HPIS"],
        ]),
      );
    }
    const after = events.slice(before).map((e) => e.type);
    expect(after.filter((t) => t === "tic_meter_mismatch")).toHaveLength(1);
    expect(after.filter((t) => t === "tic_mode_mismatch")).toHaveLength(1);
    expect(after.length).toBeLessThanOrEqual(4);
    // The standard frame is the configured meter's: its EAST is real (with the mode warning).
    const points = new Set(readings.map((r) => r.point));
    for (const p of ["x0", "x5", "x9"]) expect(points.has(p)).toBe(false);
    expect(readings.filter((r) => r.point === "ptec").map((r) => r.value)).toEqual(["HP.."]);
    expect(d.status().counters!.unknownLabels).toBe(1000);
    await d.stop();
  });

  it("a space as season is not a degraded clock when the frame's other dates carry a season", async () => {
    vi.useFakeTimers();
    const { d, line, readings } = rig({ mode: "standard" });
    await d.start();
    await vi.advanceTimersByTimeAsync(100);
    line.data!(
      standard([
        ["ADSC", "041876097467"],
        ["DATE", "", "E250716103423"],
        ["SMAXSN-1", "02180", " 250715183000"],
      ]),
    );
    const y = readings.find((r) => r.point === "smaxsn-1")!;
    expect(y).toMatchObject({ value: 2180, quality: "good" });
    expect(readings.find((r) => r.point === "smaxsn-1_time")).toMatchObject({
      value: "2025-07-15T18:30:00",
      quality: "good",
    });
    readings.length = 0;
    // No season anywhere in the frame: the meter's clock is in doubt.
    line.data!(
      standard([
        ["ADSC", "041876097467"],
        ["DATE", "", " 250716103423"],
        ["SMAXSN-1", "02180", " 250715183000"],
      ]),
    );
    expect(readings.find((r) => r.point === "smaxsn-1")).toMatchObject({ quality: "uncertain" });
    await d.stop();
  });
});
