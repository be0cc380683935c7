/**
 * The lighting model over a simulated year at the territory's coordinates: a program with astro
 * controls switches within 60 s of the independent reference table on every night of 2026
 * (agent/lighting/testcases/SOURCE.md), fixed local times follow the DST changes, calendars pick
 * their programs, the arbitration order holds, and bad blocks are refused with paths.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { decide, overrideEnded, type Override } from "../../agent/lighting/arbiter.js";
import { chooseProgram, nightEvents, programAt } from "../../agent/lighting/plan.js";
import { addDays, zonedTime } from "../../agent/lighting/time.js";
import { lightingConfigSchema } from "../../config/lighting.js";
import { configSchema } from "../../config/schema.js";
import { formatIssues } from "../../config/issues.js";

const loc = { lat: 49.3579, lon: 6.1683 };
const sky = { location: loc, timeZone: "Europe/Paris" };
const ref = new Map(
  readFileSync(
    resolve(import.meta.dirname, "../../agent/lighting/testcases/sun-thionville-2026.csv"),
    "utf8",
  )
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.split(","))
    .map(([d, rise, set]) => [d!, { rise: Date.parse(rise!), set: Date.parse(set!) }]),
);

const cfg = lightingConfigSchema.parse({
  location: loc,
  programs: [
    {
      id: "street",
      controls: [
        { at: "sunset", offset: 10, level: 100 },
        { at: "00:00", level: 50 },
        { at: "02:30", level: 30 },
        { at: "sunrise", offset: -10, level: 0 },
      ],
    },
    {
      id: "festival",
      controls: [
        { at: "sunset", level: 100 },
        { at: "sunrise", level: 0 },
      ],
    },
    {
      id: "park",
      controls: [
        { at: "sunset", level: 80 },
        { at: "01:00", level: 0 },
      ],
    },
  ],
  calendars: [
    {
      id: "town",
      rules: [
        { program: "festival", dates: ["07-13", "2026-12-31"] },
        { program: "park", from: "06-01", to: "08-31", weekdays: ["sat", "sun"] },
        { program: "street", from: "03-01", to: "11-30" },
      ],
    },
  ],
  groups: [{ id: "main", calendar: "town", lamps: [{ device: "dali", point: "group0_level" }] }],
});
const group = cfg.groups[0]!;

/** The first instant in (a, b] where the level differs from the level at a (bisection to 1 s). */
function switchTime(a: number, b: number): number {
  const l0 = programAt(cfg, group, a, sky).level;
  while (b - a > 1000) {
    const m = Math.floor((a + b) / 2);
    if (programAt(cfg, group, m, sky).level === l0) a = m;
    else b = m;
  }
  return b;
}

describe("a simulated year at 49.36 N 6.17 E (Europe/Paris)", () => {
  it("switches on at sunset+10 and off at sunrise-10 within 60 s of the reference, every night", () => {
    let worst = 0;
    let nights = 0;
    for (let date = "2026-03-01"; date <= "2026-11-29"; date = addDays(date, 1)) {
      if (chooseProgram(cfg, "town", date).program !== "street") continue;
      nights++;
      const set = ref.get(date)!.set + 10 * 60_000;
      const rise = ref.get(addDays(date, 1))!.rise - 10 * 60_000;
      const on = switchTime(set - 30 * 60_000, set + 30 * 60_000);
      const off = switchTime(rise - 30 * 60_000, rise + 30 * 60_000);
      expect(programAt(cfg, group, on, sky).level, date).toBe(100);
      expect(programAt(cfg, group, off, sky).level, date).toBe(0);
      expect(Math.abs(on - set), `on ${date}`).toBeLessThanOrEqual(60_000);
      expect(Math.abs(off - rise), `off ${date}`).toBeLessThanOrEqual(60_000);
      worst = Math.max(worst, Math.abs(on - set), Math.abs(off - rise));
    }
    expect(nights).toBeGreaterThan(200);
    console.log(`worst switch deviation over ${nights} nights: ${worst / 1000} s`);
  });

  it("dims at local midnight through both DST changes", () => {
    // Summer (CEST, UTC+2): midnight is 22:00Z; winter (CET, UTC+1): 23:00Z.
    const at = (night: string, control: string) =>
      nightEvents(cfg, group, night, sky).find((e) => e.control === control)!.ts;
    expect(new Date(at("2026-03-27", "00:00")).toISOString()).toBe("2026-03-27T23:00:00.000Z");
    expect(new Date(at("2026-03-28", "00:00")).toISOString()).toBe("2026-03-28T23:00:00.000Z");
    // 29 March 2026, 02:00 CET → 03:00 CEST: 02:30 does not exist, taken as 03:30 CEST.
    expect(new Date(at("2026-03-28", "02:30")).toISOString()).toBe("2026-03-29T01:30:00.000Z");
    expect(new Date(at("2026-03-29", "00:00")).toISOString()).toBe("2026-03-29T22:00:00.000Z");
    // 25 October 2026, 03:00 CEST → 02:00 CET: 02:30 happens twice, the first one counts.
    expect(new Date(at("2026-10-24", "02:30")).toISOString()).toBe("2026-10-25T00:30:00.000Z");
    expect(new Date(at("2026-10-25", "00:00")).toISOString()).toBe("2026-10-25T23:00:00.000Z");
    // And the level: 50 % right after midnight, 30 % after 02:30, on the DST night too.
    expect(programAt(cfg, group, Date.parse("2026-03-28T23:00:30Z"), sky).level).toBe(50);
    expect(programAt(cfg, group, Date.parse("2026-03-29T01:29:00Z"), sky).level).toBe(50);
    expect(programAt(cfg, group, Date.parse("2026-03-29T01:31:00Z"), sky).level).toBe(30);
  });

  it("picks programs by special date, date range with weekdays, and falls to the default", () => {
    expect(chooseProgram(cfg, "town", "2026-07-13")).toEqual({ program: "festival", rule: 0 });
    expect(chooseProgram(cfg, "town", "2026-07-11")).toEqual({ program: "park", rule: 1 }); // a Saturday
    expect(chooseProgram(cfg, "town", "2026-07-10")).toEqual({ program: "street", rule: 2 });
    expect(chooseProgram(cfg, "town", "2026-12-31")).toEqual({ program: "festival", rule: 0 });
    expect(chooseProgram(cfg, "town", "2026-12-30")).toEqual({ program: null, rule: null });
    // Default: on at night, off by day.
    const dec = programAt(cfg, group, Date.parse("2026-12-30T23:00:00Z"), sky);
    expect(dec).toMatchObject({ level: 100, event: { source: "default" } });
    expect(programAt(cfg, group, Date.parse("2026-12-31T11:00:00Z"), sky).level).toBe(0);
    // The park is dark by 01:00 (arrêté du 27 décembre 2018, art. 2).
    expect(programAt(cfg, group, zonedTime("2026-07-12", 0, 59, "Europe/Paris"), sky).level).toBe(
      80,
    );
    expect(programAt(cfg, group, zonedTime("2026-07-12", 1, 0, "Europe/Paris"), sky).level).toBe(0);
  });

  it("ramps linearly from the previous level", () => {
    const c = lightingConfigSchema.parse({
      programs: [
        {
          id: "p",
          controls: [
            { at: "20:00", level: 100 },
            { at: "22:00", level: 40, ramp: "10m" },
          ],
        },
      ],
      calendars: [{ id: "c", rules: [{ program: "p" }] }],
      groups: [{ id: "g", calendar: "c", lamps: [{ device: "d", point: "p" }] }],
    });
    const t = zonedTime("2026-01-10", 22, 5, "Europe/Paris");
    expect(programAt(c, c.groups[0]!, t, sky)).toMatchObject({ level: 70, ramping: true });
    expect(programAt(c, c.groups[0]!, t + 5 * 60_000, sky)).toMatchObject({
      level: 40,
      ramping: false,
    });
  });
});

describe("arbitration", () => {
  const night = Date.parse("2026-10-10T23:30:00Z"); // 01:30 local: street program at 50 %
  const prog = programAt(cfg, group, night, sky);
  const trusted = { trusted: true, reason: "synchronised" };
  const presenceGroup = {
    ...group,
    presence: { device: "pir", point: "motion", level: 90, hold: 300_000 },
  };
  const ov: Override = {
    id: 1,
    group: "main",
    level: 20,
    start: night - 60_000,
    expires: night + 3_600_000,
    untilNextEvent: false,
    who: "hypervisor",
    commandId: "o1",
    reason: "works",
  };

  it("override > safe state > sensor > program > default", () => {
    expect(prog.level).toBe(50);
    expect(decide(cfg, presenceGroup, prog, undefined, {}, trusted, night)).toMatchObject({
      level: 50,
      source: "program",
    });
    expect(
      decide(cfg, presenceGroup, prog, undefined, { presence: night - 60_000 }, trusted, night),
    ).toMatchObject({ level: 90, source: "sensor" });
    expect(
      decide(cfg, presenceGroup, prog, undefined, { presence: night - 400_000 }, trusted, night),
    ).toMatchObject({ level: 50, source: "program" });
    expect(
      decide(
        cfg,
        presenceGroup,
        prog,
        undefined,
        { presence: night },
        { trusted: false, reason: "no sync" },
        night,
      ),
    ).toMatchObject({ level: 100, source: "safe" });
    expect(
      decide(
        cfg,
        presenceGroup,
        prog,
        ov,
        { presence: night },
        { trusted: false, reason: "x" },
        night,
      ),
    ).toMatchObject({ level: 20, source: "override" });
  });

  it("an override ends at its expiry, or at the next program event", () => {
    expect(overrideEnded(ov, prog, night)).toBeNull();
    expect(overrideEnded(ov, prog, night + 3_600_000)).toBe("expired");
    const next = { ...ov, expires: null, untilNextEvent: true };
    expect(overrideEnded(next, prog, night)).toBeNull();
    const later = programAt(cfg, group, Date.parse("2026-10-11T00:31:00Z"), sky); // after 02:30
    expect(overrideEnded(next, later, Date.parse("2026-10-11T00:31:00Z"))).toMatch(
      /next program event \(02:30\)/,
    );
  });

  it("the safe state follows a lux sensor when one is bound", () => {
    const c = {
      ...cfg,
      safe_state: { level: 100, lux: { device: "lux", point: "lx", below: 30 } },
    };
    const untrusted = { trusted: false, reason: "jump" };
    expect(
      decide(c, group, prog, undefined, { lux: { value: 5, ts: night } }, untrusted, night).level,
    ).toBe(100);
    expect(
      decide(c, group, prog, undefined, { lux: { value: 800, ts: night } }, untrusted, night).level,
    ).toBe(0);
  });
});

describe("lighting block validation", () => {
  it("reports every problem with its path", () => {
    const r = configSchema.safeParse({
      version: 1,
      gateway: { id: "gw" },
      uplink: { url: "mqtt://localhost:1883" },
      lighting: {
        time_zone: "Europe/Pariss",
        programs: [
          {
            id: "p",
            controls: [
              { at: "25:00", level: 120 },
              { at: "22:00", offset: 5, level: 1 },
            ],
          },
        ],
        calendars: [{ id: "c", rules: [{ program: "nope", from: "06-01" }] }],
        groups: [{ id: "g", calendar: "cal", lamps: [] }],
      },
    });
    expect(r.success).toBe(false);
    const paths = formatIssues(r.error!.issues).map((p) => `${p.path}: ${p.message}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^lighting\.time_zone: expected an IANA time zone/),
        expect.stringMatching(/^lighting\.programs\[0\]\.controls\[0\]\.at: /),
        expect.stringMatching(
          /^lighting\.programs\[0\]\.controls\[0\]\.level: expected integer 0\.\.100/,
        ),
        expect.stringMatching(
          /^lighting\.programs\[0\]\.controls\[1\]\.offset: an offset goes with an astro event/,
        ),
        expect.stringMatching(/^lighting\.calendars\[0\]\.rules\[0\]\.to: a date range needs both/),
        expect.stringMatching(/^lighting\.groups\[0\]\.lamps: /),
      ]),
    );
  });

  it("needs a location for the sun", () => {
    const r = configSchema.safeParse({
      version: 1,
      gateway: { id: "gw" },
      uplink: { url: "mqtt://localhost:1883" },
      lighting: {},
    });
    expect(formatIssues(r.error!.issues).map((p) => p.path)).toContain("lighting.location");
  });
});
