/**
 * Street lighting against the Modbus simulator's DALI gateway, through the real command router,
 * with a fake clock moved through a night at Thionville (issue 21): the registers traced with
 * the uplink down; overrides from the hypervisor over a real Mosquitto (expiry, no level, a
 * program change while one holds); a restart in the middle of the night; an untrusted clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nightSun } from "../../agent/lighting/sun.js";
import { zonedTime } from "../../agent/lighting/time.js";
import { waitFor } from "../helpers/ports.js";
import {
  type LightingRig,
  THIONVILLE,
  disposeLightingRig,
  lightingBlock,
  startLightingRig,
  waitEvent,
} from "./lighting-fixtures.js";

const GW = "gw-light";
const TZ = "Europe/Paris";
const NIGHT = "2026-10-10";
const sun = nightSun(NIGHT, THIONVILLE, TZ);
const local = (date: string, h: number, m: number) => zonedTime(date, h, m, TZ);
let rig: LightingRig;
const lamps = () => ({
  l0: rig.dali.bank.holding[0],
  l4: rig.dali.bank.holding[4],
  relay: rig.cabinet.bank.coil[0],
});

beforeAll(async () => {
  rig = await startLightingRig(GW, local(NIGHT, 12, 0));
}, 60_000);
afterAll(() => disposeLightingRig(rig));

describe("a night of street lighting, uplink down", () => {
  it("is off by day, on at sunset+15, dimmed at midnight, raised by presence, off at sunrise-15", async () => {
    const trace: [string, ReturnType<typeof lamps>][] = [];
    const at = async (label: string, t: number) => {
      rig.clock.set(t);
      await rig.tick();
      trace.push([label, lamps()]);
    };
    // The first tick after the start wrote the day level (the simulator starts with lamps on).
    await waitFor(() => rig.dali.bank.holding[0] === 0, 10_000, "day level written");
    await rig.broker.stop();
    await waitFor(() => !rig.run.agent.uplink.connected, 10_000, "uplink down");
    await at("sunset+14", sun.sunset! + 14 * 60_000);
    await at("sunset+15", sun.sunset! + 15 * 60_000 + 1000);
    await at("23:59", local(NIGHT, 23, 59));
    await at("00:00", local("2026-10-11", 0, 0) + 1000);
    rig.cabinet.bank.holding[0] = 1; // someone walks by
    await waitFor(() => rig.dali.bank.holding[0] === 90, 10_000, "presence raises the level");
    trace.push(["presence", lamps()]);
    const motions: unknown[] = [];
    rig.run.agent.onRecord((rs) => {
      for (const r of rs) if (r.reading?.point === "motion") motions.push(r.reading.value);
    });
    rig.cabinet.bank.holding[0] = 0;
    await waitFor(() => motions.includes(0), 10_000, "the detector clears");
    await at("presence+4m", rig.clock.now() + 4 * 60_000);
    await at("presence+6m", rig.clock.now() + 2 * 60_000);
    await at("sunrise-16", sun.sunrise! - 16 * 60_000);
    await at("sunrise-15", sun.sunrise! - 15 * 60_000 + 1000);
    expect(trace).toEqual([
      ["sunset+14", { l0: 0, l4: 0, relay: 0 }],
      ["sunset+15", { l0: 100, l4: 100, relay: 1 }],
      ["23:59", { l0: 100, l4: 100, relay: 1 }],
      ["00:00", { l0: 40, l4: 40, relay: 1 }],
      ["presence", { l0: 90, l4: 90, relay: 1 }],
      ["presence+4m", { l0: 90, l4: 90, relay: 1 }],
      ["presence+6m", { l0: 40, l4: 40, relay: 1 }],
      ["sunrise-16", { l0: 40, l4: 40, relay: 1 }],
      ["sunrise-15", { l0: 0, l4: 0, relay: 0 }],
    ]);
    // Every change went through the router, audited as the lighting module.
    const audit = rig.run.cp.audit.list(200).filter((a) => a.who === "lighting");
    expect(
      audit.some((a) => a.point === "group0_level" && a.value === 40 && a.outcome === "ok"),
    ).toBe(true);
    // With reasons, and the failed lamp of the DALI line named.
    const changes = rig.events.filter((e) => e.type === "lighting_program_change");
    expect(changes.map((e) => e.data?.to)).toEqual(expect.arrayContaining([100, 40, 0]));
    expect(changes.find((e) => e.data?.to === 40)?.message).toMatch(
      /program "street".*00:00 → 40 %/,
    );
    expect(rig.events.find((e) => e.type === "lighting_sensor_change")?.message).toMatch(
      /presence rule/,
    );
    const stray = rig.events.find((e) => e.type === "lighting_lamp_not_following");
    expect(stray?.message).toMatch(
      /rue Haute n°3 \(group "main"\): does not follow: reads 100 %, sent 0 %/,
    );
    const failure = rig.events.find((e) => e.type === "lighting_lamp_failure");
    expect(failure?.message).toMatch(/impasse n°4.*lamp failure/);
  }, 60_000);

  it("reports the night's burning hours, energy and saving when it ends", async () => {
    rig.clock.set(local("2026-10-11", 12, 5));
    await rig.tick();
    await waitFor(
      () => rig.run.agent.store.stats().next_seq > 0 && energy("main_energy_wh") !== undefined,
      10_000,
      "energy telemetry",
    );
    const burn = energy("main_burning_h")!;
    const full = energy("main_full_night_wh")!;
    const wh = energy("main_energy_wh")!;
    const night = (sun.sunrise! - 15 * 60_000 - (sun.sunset! + 15 * 60_000)) / 3_600_000;
    expect(burn).toBeCloseTo(night, 1);
    expect(full).toBeCloseTo((400 * (sun.sunrise! - sun.sunset!)) / 3_600_000, 0);
    expect(wh).toBeGreaterThan(0);
    expect(wh).toBeLessThan(full);
    expect(energy("main_saving_wh")).toBeCloseTo(full - wh, 1);
    await rig.broker.start();
    await waitFor(() => rig.run.agent.uplink.connected, 30_000, "uplink back");
    await rig.hv.waitReady();
  }, 60_000);
});

const seen: { point: string; value: unknown }[] = [];
function energy(point: string): number | undefined {
  if (seen.length === 0)
    rig.run.agent.onRecord((rs) => {
      for (const r of rs) if (r.reading?.device === "lighting") seen.push(r.reading);
    });
  return seen.find((r) => r.point === point)?.value as number | undefined;
}

describe("overrides from the hypervisor", () => {
  const evening = "2026-10-11";

  it("holds a level until its expiry, then the program applies again", async () => {
    rig.clock.set(local(evening, 21, 0));
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(100);
    const r = await rig.hv.request("lighting/override", {
      id: "ov-1",
      group: "main",
      level: 70,
      for: "2h",
      reason: "works rue Haute",
    });
    expect(r).toMatchObject({
      ok: true,
      result: { groups: [{ id: "main", level: 70, override: { level: 70, who: "hypervisor" } }] },
    });
    expect(rig.dali.bank.holding[0]).toBe(70);
    await waitEvent(rig, "lighting_override_start", (e) => e.data?.reason === "works rue Haute");
    rig.clock.set(local(evening, 22, 59));
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(70);
    rig.clock.set(local(evening, 23, 0) + 1000);
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(100);
    await waitEvent(rig, "lighting_override_end", (e) => e.data?.reason === "expired");
  }, 30_000);

  it("refuses an override without an end, and ends one when sent without a level", async () => {
    const bad = await rig.hv.request("lighting/override", {
      id: "ov-bad",
      group: "main",
      level: 5,
    });
    expect(bad).toMatchObject({
      ok: false,
      error: {
        code: "CommandInvalid",
        message: expect.stringMatching(/for: missing: an override needs an end/),
      },
    });
    const unknown = await rig.hv.request("lighting/override", {
      id: "ov-unk",
      group: "nope",
      level: 5,
      for: "1h",
    });
    expect(unknown.error?.message).toMatch(/unknown lighting group "nope" \(groups: main, side\)/);
    await rig.hv.request("lighting/override", {
      id: "ov-2",
      group: "main",
      level: 10,
      until_next_event: true,
    });
    expect(rig.dali.bank.holding[0]).toBe(10);
    const end = await rig.hv.request("lighting/override", { id: "ov-3", group: "main" });
    expect(end).toMatchObject({
      ok: true,
      result: { groups: [{ id: "main", level: 100, override: null }] },
    });
    expect(rig.dali.bank.holding[0]).toBe(100);
    await waitEvent(rig, "lighting_override_end", (e) =>
      /ended by hypervisor/.test(String(e.data?.reason)),
    );
  }, 30_000);

  it("keeps the override through a program change, and the new program applies after it", async () => {
    await rig.hv.request("lighting/override", { id: "ov-4", group: "main", level: 70, for: "2h" });
    const set = await rig.hv.request("lighting/set", { id: "set-1", lighting: lightingBlock(20) });
    expect(set).toMatchObject({ ok: true, result: { applied: true, groups: ["main", "side"] } });
    rig.clock.set(local("2026-10-12", 0, 30));
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(70);
    rig.clock.set(local("2026-10-12", 1, 1));
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(20);
    const got = await rig.hv.request("lighting/get", { id: "get-1" });
    expect(got).toMatchObject({
      ok: true,
      result: { version: expect.any(Number), source: "remote" },
    });
    // A bad block changes nothing and names its paths.
    const bad = await rig.hv.request("lighting/set", {
      id: "set-bad",
      lighting: {
        ...lightingBlock(),
        groups: [{ id: "g", calendar: "town", lamps: [{ device: "dali", point: "lamp2_status" }] }],
      },
    });
    expect(bad.error?.message).toMatch(
      /lighting\.groups\[0\]\.lamps\[0\]\.point: point "dali\/lamp2_status" is not writable/,
    );
    expect(rig.run.cp.lighting.running!.config.groups.map((g) => g.id)).toEqual(["main", "side"]);
    // The same id again: the stored response, nothing applied again.
    const again = await rig.hv.request("lighting/set", {
      id: "set-1",
      lighting: lightingBlock(20),
    });
    expect(again).toEqual({ ...set, duplicate: true });
  }, 30_000);

  it("rolls a new block back when one of its lamps cannot be written", async () => {
    rig.sim.setFault(5, { kind: "no_answer" }); // the cabinet with the relay circuit
    const r = await rig.hv.request("lighting/set", { id: "set-2", lighting: lightingBlock(25) });
    rig.sim.setFault(5, { kind: "none" });
    expect(r).toMatchObject({
      ok: false,
      error: {
        code: "CommandFailed",
        message: expect.stringMatching(
          /rolled back: the lamps of group "main" could not be written/,
        ),
        details: { rolled_back: true, failed: ["main"] },
      },
    });
    await waitEvent(rig, "lighting_rolled_back");
    await waitEvent(rig, "lighting_write_failed", (e) => /circuit 1/.test(e.message));
    // Written twice (the new block, then the rollback), one event: not one per attempt.
    expect(rig.events.filter((e) => e.type === "lighting_write_failed")).toHaveLength(1);
    // The previous block is in force again: 20 % after midnight.
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(20);
    expect(rig.run.cp.lighting.running!.views()[0]!.decision.reason).toMatch(/00:00 → 20 %/);
  }, 30_000);
});

describe("restart and clock safety", () => {
  it("sets the level that applies now at the first poll after a restart", async () => {
    await rig.run.stop();
    rig.dali.bank.holding[0] = 0;
    rig.dali.bank.holding[4] = 0;
    rig.clock.set(local("2026-10-12", 2, 0));
    await rig.start();
    await waitFor(
      () => rig.dali.bank.holding[0] === 20 && rig.dali.bank.holding[4] === 20,
      10_000,
      "level after restart",
    );
    // The remote block survived the restart (same file): midnight level 20, not the file's 40.
    expect(rig.run.cp.lighting.running!.views()[0]!.decision.reason).toMatch(/00:00 → 20 %/);
  }, 60_000);

  it("falls to the safe state when the clock jumps, and back when it is synchronised", async () => {
    rig.clock.jump(3 * 3_600_000);
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(100);
    await waitEvent(rig, "lighting_clock_untrusted", (e) =>
      /jumped forward by 10800 s/.test(e.message),
    );
    rig.clock.jump(-3 * 3_600_000);
    rig.clock.sync = rig.clock.now();
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(20);
    await waitEvent(rig, "lighting_clock_trusted");
    rig.clock.sync = null;
    await rig.tick();
    expect(rig.dali.bank.holding[0]).toBe(100);
    expect(rig.run.cp.lighting.running!.views()[0]!.decision.reason).toMatch(
      /no time synchronisation since boot/,
    );
  }, 30_000);
});
