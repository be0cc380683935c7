/**
 * Sun times against an independent reference (NOAA Solar Calculator equations via astral 1.6.1,
 * agent/lighting/testcases/SOURCE.md) for every evening of 2026 at the territory's latitude.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { nightSun } from "../../agent/lighting/sun.js";
import { addDays } from "../../agent/lighting/time.js";

const loc = { lat: 49.3579, lon: 6.1683 };
const rows = readFileSync(
  resolve(import.meta.dirname, "../../agent/lighting/testcases/sun-thionville-2026.csv"),
  "utf8",
)
  .split("\n")
  .filter((l) => l && !l.startsWith("#"))
  .map((l) => {
    const [date, sunrise, sunset, dawn, dusk] = l.split(",") as [
      string,
      string,
      string,
      string,
      string,
    ];
    return {
      date,
      sunrise: Date.parse(sunrise),
      sunset: Date.parse(sunset),
      dawn: Date.parse(dawn),
      dusk: Date.parse(dusk),
    };
  });
const byDate = new Map(rows.map((r) => [r.date, r]));

describe("sun times at 49.36 N 6.17 E over 2026", () => {
  it("has the whole year in the reference table", () => expect(rows).toHaveLength(365));

  it("sunset and civil dusk of each evening, sunrise and civil dawn of each morning", () => {
    let worst = { rise: 0, set: 0, dawn: 0, dusk: 0 };
    for (const r of rows.slice(0, -1)) {
      const n = nightSun(r.date, loc, "Europe/Paris");
      const next = byDate.get(addDays(r.date, 1))!;
      const d = {
        set: Math.abs(n.sunset! - r.sunset),
        dusk: Math.abs(n.civil_dusk! - r.dusk),
        rise: Math.abs(n.sunrise! - next.sunrise),
        dawn: Math.abs(n.civil_dawn! - next.dawn),
      };
      worst = {
        rise: Math.max(worst.rise, d.rise),
        set: Math.max(worst.set, d.set),
        dawn: Math.max(worst.dawn, d.dawn),
        dusk: Math.max(worst.dusk, d.dusk),
      };
      expect(d.set, `sunset ${r.date}`).toBeLessThanOrEqual(60_000);
      expect(d.rise, `sunrise ${next.date}`).toBeLessThanOrEqual(60_000);
      expect(d.dusk, `civil dusk ${r.date}`).toBeLessThanOrEqual(60_000);
      expect(d.dawn, `civil dawn ${next.date}`).toBeLessThanOrEqual(60_000);
    }
    console.log(
      `worst deviation (s): ${JSON.stringify(Object.fromEntries(Object.entries(worst).map(([k, v]) => [k, v / 1000])))}`,
    );
  });
});
