/**
 * Energy per night on a real SQLite file: burning hours and rated power × level, or the delta of
 * a bound kWh counter, reported when the night ends with the saving against full power from
 * sunset to sunrise; the accumulated night survives a reopen of the database (an agent restart).
 */
import { afterEach, describe, expect, it } from "vitest";
import { LightingDb } from "../../agent/lighting/db.js";
import { EnergyMeter } from "../../agent/lighting/energy.js";
import { nightSun } from "../../agent/lighting/sun.js";
import { zonedTime } from "../../agent/lighting/time.js";
import { lightingConfigSchema } from "../../config/lighting.js";
import type { Reading } from "../../drivers/driver.js";
import { TempDb } from "./commands-helpers.js";

const sky = { location: { lat: 49.3579, lon: 6.1683 }, timeZone: "Europe/Paris" };
const cfg = lightingConfigSchema.parse({
  groups: [
    { id: "a", calendar: "c", rated_power_w: 1000, lamps: [{ device: "d", point: "p" }] },
    {
      id: "m",
      calendar: "c",
      lamps: [{ device: "d", point: "p" }],
      energy_point: { device: "meter", point: "kwh" },
    },
  ],
  calendars: [{ id: "c", rules: [{ program: "p" }] }],
  programs: [{ id: "p", controls: [{ at: "20:00", level: 100 }] }],
});
const t = (date: string, h: number, m = 0) => zonedTime(date, h, m, "Europe/Paris");
let tmp: TempDb | undefined;
afterEach(() => tmp?.dispose());

describe("energy per night", () => {
  it("counts burning hours and rated power × level, and reports the saving at noon", () => {
    tmp = new TempDb();
    const out: Reading[] = [];
    const db = new LightingDb(tmp.db);
    const meter = new EnergyMeter(
      db,
      (r) => out.push(...r),
      () => undefined,
    );
    const g = cfg.groups[0]!;
    const step = (ts: number, level: number) => {
      const s = meter.account(g, db.state("a"), ts, sky, 30_000);
      db.saveState("a", { ...s, level, ts });
    };
    step(t("2026-01-10", 17), 100); // 17:00 → 100 %
    step(t("2026-01-10", 23), 50); // 6 h at 100 %: 6 kWh
    // A restart: a new meter on the reopened file goes on with the same night.
    const db2 = new LightingDb(tmp.reopen());
    const meter2 = new EnergyMeter(
      db2,
      (r) => out.push(...r),
      () => undefined,
    );
    const s1 = meter2.account(g, db2.state("a"), t("2026-01-11", 7), sky, 30_000); // 8 h at 50 %: 4 kWh
    db2.saveState("a", { ...s1, level: 0, ts: t("2026-01-11", 7) });
    meter2.account(g, db2.state("a"), t("2026-01-11", 12, 1), sky, 30_000);
    const v = Object.fromEntries(out.map((r) => [r.point, r.value]));
    const sun = nightSun("2026-01-10", sky.location, sky.timeZone);
    const full = (1000 * (sun.sunrise! - sun.sunset!)) / 3_600_000;
    expect(v).toEqual({
      a_burning_h: 14,
      a_energy_wh: 10_000,
      a_full_night_wh: Math.round(full * 1000) / 1000,
      a_saving_wh: Math.round((full - 10_000) * 1000) / 1000,
    });
    expect(out.every((r) => r.device === "lighting" && r.quality === "good")).toBe(true);
  });

  it("takes the energy from a bound kWh counter", () => {
    tmp = new TempDb();
    const out: Reading[] = [];
    const db = new LightingDb(tmp.db);
    let kwh = 1500.25;
    const meter = new EnergyMeter(
      db,
      (r) => out.push(...r),
      (key) => (key === "meter/kwh" ? { value: kwh, ts: 0, unit: "kWh" } : undefined),
    );
    const g = cfg.groups[1]!;
    const s0 = meter.account(g, undefined, t("2026-01-10", 17), sky, 30_000);
    db.saveState("m", { ...s0, level: 100, ts: t("2026-01-10", 17) });
    kwh += 3.5;
    meter.account(g, db.state("m"), t("2026-01-11", 12, 1), sky, 30_000);
    expect(out.find((r) => r.point === "m_energy_wh")?.value).toBeCloseTo(3500, 3);
  });
});
