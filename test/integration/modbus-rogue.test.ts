/**
 * Issue 16 items 1 and 3: a rogue slave behind one TCP endpoint sends one kind of malformed
 * answer for unit 2 while unit 1 stays healthy. No kind may wedge the connection: once the
 * fault stops, polling of unit 1 (and unit 2) resumes within two poll periods — counted in polls,
 * not in wall-clock time — and no malformed answer is ever taken as a good reading.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Driver, Reading } from "../../drivers/driver.js";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { waitFor } from "../helpers/ports.js";
import { driverConfig, recorder } from "./modbus-helpers.js";
import {
  framingFaults,
  type RogueFault,
  RogueSlave,
  validationFaults,
} from "./modbus-rogue-slave.js";

let slave: RogueSlave | undefined;
let driver: Driver | undefined;

afterEach(async () => {
  await driver?.stop();
  driver = undefined;
  await slave?.close();
  slave = undefined;
});

const points = [
  { id: "r0", table: "holding", address: 0 },
  { id: "r1", table: "holding", address: 1 },
];

async function faultThenHeal(kind: RogueFault) {
  slave = new RogueSlave();
  const port = await slave.listen();
  slave.fault = kind;
  const rec = recorder();
  driver = createModbusDriver(
    driverConfig({
      transport: { type: "tcp", host: "127.0.0.1", port },
      poll_interval: "200ms",
      timeout_ms: 300,
      retries: 1,
      devices: [
        { id: "healthy", unit_id: 1, points },
        { id: "rogue", unit_id: 2, points },
      ],
    }),
    rec.ctx,
  );
  await driver.start();
  const s = slave;
  await waitFor(() => s.faulted >= 3, 20_000, `three ${kind} answers`);
  const during = rec.readings.filter((r) => r.device === "rogue");
  s.fault = undefined;
  const healTs = Date.now();
  const after = (dev: string) =>
    rec.readings.filter((r) => r.device === dev && r.point === "r0" && r.ts > healTs);
  await waitFor(
    () => after("healthy").some((r) => r.quality === "good"),
    20_000,
    "a good reading of the healthy unit",
  );
  await waitFor(
    () => after("rogue").some((r) => r.quality === "good"),
    20_000,
    "a good reading of the healed unit",
  );
  return { rec, during, healthyAfter: after("healthy"), rogueAfter: after("rogue") };
}

/** Polls that completed after the fault stopped, before the first good one. */
const failedPollsBeforeGood = (rs: Reading[]) => rs.findIndex((r) => r.quality === "good");

describe("modbus TCP: no malformed answer wedges the connection", () => {
  for (const kind of framingFaults) {
    it(`resumes after ${kind}`, async () => {
      const { healthyAfter, rogueAfter, during } = await faultThenHeal(kind);
      expect(failedPollsBeforeGood(healthyAfter)).toBeLessThanOrEqual(2);
      expect(failedPollsBeforeGood(rogueAfter)).toBeLessThanOrEqual(2);
      expect(
        during.filter((r) => r.quality === "good" && r.value !== 2000 && r.value !== 2001),
      ).toEqual([]);
      expect(healthyAfter.find((r) => r.quality === "good")?.value).toBe(1000);
    }, 60_000);
  }
});

describe("modbus TCP: every answer is checked and refused whole", () => {
  for (const kind of validationFaults) {
    it(`refuses ${kind}`, async () => {
      const { during, healthyAfter, rogueAfter } = await faultThenHeal(kind);
      expect(during.length).toBeGreaterThan(0);
      expect(during.filter((r) => r.quality === "good")).toEqual([]);
      for (const r of during) {
        expect(r.quality).toMatch(/^(frame_error|timeout|offline)$/);
        expect(r.detail ?? "").not.toMatch(/offset|out of range/i);
      }
      expect(during.some((r) => r.quality === "frame_error")).toBe(true);
      expect(failedPollsBeforeGood(healthyAfter)).toBeLessThanOrEqual(2);
      expect(failedPollsBeforeGood(rogueAfter)).toBeLessThanOrEqual(2);
      expect(rogueAfter.find((r) => r.quality === "good")?.value).toBe(2000);
    }, 60_000);
  }
});
