/**
 * Sun times with astronomy-engine 2.1.19 (pinned; MIT; https://github.com/cosinekitty/astronomy):
 * VSOP87-based, refraction and the sun's upper limb included in rise/set (the USNO definition),
 * accurate to well under a minute at our latitudes. Chosen over suncalc 2.0.2 and
 * sunrise-sunset-js 3.3.1 (simplified almanac formulas, about a minute off; suncalc 1.x about
 * two) — checked against an independent NOAA-algorithm table in test/unit/lighting-sun.test.ts.
 */
import { Body, Observer, SearchAltitude, SearchRiseSet } from "astronomy-engine";
import type { AstroEvent } from "../../config/lighting.js";
import { zonedTime } from "./time.js";

export interface NightSun {
  /** ms since the epoch; null where the sun does not cross (polar day or night). */
  sunset: number | null;
  civil_dusk: number | null;
  sunrise: number | null;
  civil_dawn: number | null;
}

export interface Location {
  lat: number;
  lon: number;
}

const cache = new Map<string, NightSun>();

/** Sun events of the night of `date` (evening's date): sunset/dusk that evening, dawn/sunrise after. */
export function nightSun(date: string, loc: Location, tz: string): NightSun {
  const key = `${date}|${loc.lat}|${loc.lon}|${tz}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const obs = new Observer(loc.lat, loc.lon, 0);
  const noon = new Date(zonedTime(date, 12, 0, tz));
  const ms = (t: { date: Date } | null) => (t ? t.date.getTime() : null);
  const sunset = ms(SearchRiseSet(Body.Sun, obs, -1, noon, 1));
  const civilDusk = ms(SearchAltitude(Body.Sun, obs, -1, noon, 1, -6));
  const from = new Date(sunset ?? noon.getTime());
  const out: NightSun = {
    sunset,
    civil_dusk: civilDusk,
    sunrise: ms(SearchRiseSet(Body.Sun, obs, +1, from, 1)),
    civil_dawn: ms(SearchAltitude(Body.Sun, obs, +1, from, 1, -6)),
  };
  if (cache.size > 2000) cache.clear();
  cache.set(key, out);
  return out;
}

export function astroTime(
  date: string,
  event: AstroEvent,
  loc: Location,
  tz: string,
): number | null {
  return nightSun(date, loc, tz)[event];
}
