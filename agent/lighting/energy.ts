/**
 * Per group and per night: burning hours (level above 0), energy (rated power × level, or the
 * delta of a bound metering point) and the saving against full power from sunset to sunrise.
 * Accumulated in the store at every poll (lighting_state), reported as telemetry when the night
 * ends (the first poll after noon): device `lighting`, points `<group>_burning_h`,
 * `<group>_energy_wh`, `<group>_full_night_wh`, `<group>_saving_wh`.
 */
import type { LightingGroup } from "../../config/lighting.js";
import type { Reading } from "../../drivers/driver.js";
import type { GroupState, LightingDb } from "./db.js";
import type { Sky } from "./plan.js";
import { nightSun } from "./sun.js";
import { nightOf } from "./time.js";

/** Longest interval counted between two polls: lamps hold their level while the agent is down. */
const MAX_INTERVAL_MS = 24 * 3_600_000;

export class EnergyMeter {
  private readonly meterStart = new Map<string, number>();

  constructor(
    private readonly db: LightingDb,
    private readonly emit: (readings: Reading[]) => void,
    private readonly latest: (
      key: string,
    ) => { value: Reading["value"]; ts: number; unit?: string | undefined } | undefined,
  ) {}

  /** The group's state with the interval since the last poll counted (and the night rolled). */
  account(
    g: LightingGroup,
    prev: GroupState | undefined,
    now: number,
    sky: Sky,
    _pollMs: number,
  ): GroupState {
    const night = nightOf(now, sky.timeZone);
    let s: GroupState = prev ?? {
      level: null,
      source: null,
      reason: null,
      ts: null,
      night,
      burnMs: 0,
      energyWh: 0,
      fullWh: 0,
    };
    const dt = s.ts === null ? 0 : now - s.ts;
    const level = s.level;
    if (dt > 0 && dt <= MAX_INTERVAL_MS && level !== null) {
      if (level > 0) s = { ...s, burnMs: s.burnMs + dt };
      s = { ...s, energyWh: s.energyWh + (g.rated_power_w * level * dt) / 100 / 3_600_000 };
    }
    const meter = this.meter(g);
    if (meter !== undefined) {
      if (!this.meterStart.has(g.id)) this.meterStart.set(g.id, meter - s.energyWh);
      s = { ...s, energyWh: Math.max(0, meter - this.meterStart.get(g.id)!) };
    }
    if (s.night !== null && s.night !== night) {
      this.report(g, s, now, sky);
      if (meter !== undefined) this.meterStart.set(g.id, meter);
      s = { ...s, night, burnMs: 0, energyWh: 0, fullWh: 0 };
    }
    return { ...s, night };
  }

  /** The bound counter in Wh (a kWh counter is converted; other units are not energy). */
  private meter(g: LightingGroup): number | undefined {
    if (!g.energy_point) return undefined;
    const r = this.latest(`${g.energy_point.device}/${g.energy_point.point}`);
    if (typeof r?.value !== "number") return undefined;
    if (r.unit === "kWh") return r.value * 1000;
    return r.unit === undefined || r.unit === "Wh" ? r.value : undefined;
  }

  private report(g: LightingGroup, s: GroupState, now: number, sky: Sky): void {
    const sun = nightSun(s.night!, sky.location, sky.timeZone);
    const fullWh =
      sun.sunset !== null && sun.sunrise !== null
        ? (g.rated_power_w * (sun.sunrise - sun.sunset)) / 3_600_000
        : 0;
    const r = (point: string, value: number, unit: string): Reading => ({
      device: "lighting",
      point: `${g.id}_${point}`,
      ts: now,
      value: Math.round(value * 1000) / 1000,
      unit,
      quality: "good",
    });
    this.emit([
      r("burning_h", s.burnMs / 3_600_000, "h"),
      r("energy_wh", s.energyWh, "Wh"),
      r("full_night_wh", fullWh, "Wh"),
      r("saving_wh", Math.max(0, fullWh - s.energyWh), "Wh"),
    ]);
    this.db.saveState(g.id, { ...s, fullWh });
  }
}
