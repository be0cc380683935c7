/**
 * Acceptance of the control plane over a real Mosquitto, against the Modbus simulator's DALI
 * lighting gateway: dimming, refusals that leave the register unchanged, one write per command
 * id (also across an agent restart), remote configuration with its five mistakes and its
 * rollback, history and replay.
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resultSchemas } from "../../agent/commands/schemas.js";
import { addSimDevice, type SimUnit } from "../../sim/modbus/index.js";
import { waitFor } from "../helpers/ports.js";
import { type Rig, baseConfig, disposeRig, startRig } from "./commands-fixtures.js";

const GW = "gw-cmd";
/** The built CLI (`npm test` builds first). */
const cli = resolve(import.meta.dirname, "../../dist/agent/main.js");
let rig: Rig;
let dali: SimUnit;
const writes = () => (dali.functions.get(6) ?? 0) + (dali.functions.get(16) ?? 0);

beforeAll(async () => {
  rig = await startRig(
    GW,
    (sim) => (dali = addSimDevice(sim, 3, "dali-gateway")),
    (url, port) => baseConfig(GW, url, port),
  );
});

afterAll(() => rig && disposeRig(rig));

describe("hypervisor commands against the simulated lighting gateway", () => {
  it("dims a lamp: the simulator's register changes and the response says ok", async () => {
    const r = await rig.hv.request("write", {
      id: "dim-1",
      device: "dali",
      point: "lamp2_level",
      value: 40,
    });
    expect(r).toEqual({
      id: "dim-1",
      ok: true,
      result: {
        device: "dali",
        results: [{ point: "lamp2_level", value: 40, ok: true, read_back: 40 }],
      },
    });
    expect(resultSchemas.write.parse(r.result)).toBeTruthy();
    expect(dali.bank.holding[2]).toBe(40);
  });

  it.each([
    [
      "out of range",
      { point: "lamp2_level", value: 101 },
      "CommandRefused",
      /above the maximum 100/,
    ],
    ["not writable", { point: "lamp2_status", value: 1 }, "CommandRefused", /not writable/],
    [
      "unknown point",
      { point: "lamp99_level", value: 10 },
      "PointUnknown",
      /no point "lamp99_level"/,
    ],
    ["wrong type", { point: "lamp2_level", value: "10" }, "CommandInvalid", /takes a number/],
  ])("%s: an error response and the register unchanged", async (_what, body, code, message) => {
    // Its own starting value: this test does not rely on what an earlier test wrote.
    dali.bank.holding[2] = 33;
    const before = writes();
    const r = await rig.hv.request("write", {
      id: `bad-${code}-${String(body.value)}`,
      device: "dali",
      ...body,
    });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe(code);
    expect(r.error?.message).toMatch(message);
    expect(dali.bank.holding[2]).toBe(33);
    expect(writes()).toBe(before);
  });

  it("answers malformed requests on res/<name> without a response topic", async () => {
    const r = await rig.hv.request(
      "write",
      { id: "nodev", point: "lamp2_level", value: 1 },
      { plain: true },
    );
    expect(r).toMatchObject({
      id: "nodev",
      ok: false,
      error: { code: "CommandInvalid", message: expect.stringMatching(/device: missing/) },
    });
    const bad = await rig.hv.request("write", {}, { raw: "{oops", plain: false });
    expect(bad).toMatchObject({
      id: null,
      ok: false,
      error: { code: "CommandInvalid", message: expect.stringMatching(/malformed JSON/) },
    });
    const unknown = await rig.hv.request("reboot", { id: "rb" });
    expect(unknown).toMatchObject({ id: "rb", ok: false, error: { code: "CommandUnknown" } });
  });

  it("writes once for a command id sent twice, and again after an agent restart", async () => {
    const before = writes();
    const first = await rig.hv.request("write", {
      id: "once-1",
      device: "dali",
      point: "lamp4_level",
      value: 25,
    });
    const second = await rig.hv.request("write", {
      id: "once-1",
      device: "dali",
      point: "lamp4_level",
      value: 25,
    });
    expect(first.ok).toBe(true);
    expect(second).toEqual({ ...first, duplicate: true });
    expect(writes()).toBe(before + 1);
    // Someone changes the lamp locally: a replayed command must not set it back.
    dali.bank.holding[4] = 60;
    await rig.run.stop();
    rig.run = await rig.harness.start();
    await rig.hv.waitReady();
    const third = await rig.hv.request("write", {
      id: "once-1",
      device: "dali",
      point: "lamp4_level",
      value: 25,
    });
    expect(third).toEqual({ ...first, duplicate: true });
    expect(writes()).toBe(before + 1);
    expect(dali.bank.holding[4]).toBe(60);
    // The audit trail has all three, with who and outcome.
    expect(rig.run.cp.audit.list(3).map((a) => [a.commandId, a.who, a.outcome])).toEqual([
      ["once-1", "hypervisor", "duplicate"],
      ["once-1", "hypervisor", "duplicate"],
      ["once-1", "hypervisor", "ok"],
    ]);
  }, 60_000); // an agent restart

  it("refuses a retained request, live and redelivered at the next subscription", async () => {
    const before = writes();
    const live = rig.hv.received.length;
    await rig.hv.client.publishAsync(
      `eclor/v1/${GW}/cmd/write`,
      JSON.stringify({ id: "retained-1", device: "dali", point: "lamp5_level", value: 5 }),
      { qos: 1, retain: true },
    );
    // Live: refused too (Retain As Published, issue 14.5), nothing written.
    await waitFor(
      () => rig.hv.received.slice(live).find((m) => m.topic === `eclor/v1/${GW}/res/write`),
      5000,
      "the response to the live retained request",
    );
    expect(writes()).toBe(before);
    await rig.run.stop();
    const mark = rig.hv.received.length;
    rig.run = await rig.harness.start();
    await rig.hv.waitReady();
    await waitFor(
      () => rig.hv.received.slice(mark).find((m) => m.topic === `eclor/v1/${GW}/res/write`),
      5000,
      "the response to the retained copy",
    );
    const res = rig.hv.received
      .slice(mark)
      .find((m) => m.topic === `eclor/v1/${GW}/res/write`)!.body;
    expect(res).toMatchObject({
      ok: false,
      error: { code: "CommandRefused", message: expect.stringMatching(/retained command refused/) },
    });
    expect(writes()).toBe(before);
    await rig.hv.client.publishAsync(`eclor/v1/${GW}/cmd/write`, "", { qos: 1, retain: true });
  }, 60_000); // an agent restart

  it("audits writes upstream as events", async () => {
    const w = await rig.hv.request("write", {
      id: "audit-1",
      device: "dali",
      point: "lamp5_level",
      value: 15,
    });
    expect(w.ok).toBe(true);
    await waitFor(
      () =>
        rig.hv.received.some(
          (m) =>
            m.topic === `eclor/v1/${GW}/events` &&
            JSON.stringify(m.body).includes('"command_audit"') &&
            JSON.stringify(m.body).includes("audit-1"),
        ),
      10_000,
      "a command_audit event",
    );
  });

  it("reads now through the driver", async () => {
    dali.bank.holding[2] = 55; // set here: the read must see the device now, not an earlier test
    const r = await rig.hv.request("read", {
      id: "rd-1",
      device: "dali",
      points: ["lamp2_level", "lamps_found"],
    });
    expect(r.ok).toBe(true);
    const res = resultSchemas.read.parse(r.result);
    expect(res.readings.map((x) => [x.point, x.value, x.quality])).toEqual([
      ["lamp2_level", 55, "good"],
      ["lamps_found", 16, "good"],
    ]);
  });
});

describe("remote configuration", () => {
  const cfg = () => baseConfig(GW, rig.broker.url, rig.simPort);

  it("config/set with five mistakes: all five reported, nothing changed", async () => {
    const before = await rig.hv.request("config/get", { id: "get-1" });
    const bad = cfg() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form test edit of a config object
    bad.gateway.name = 42;
    bad.uplink.keepalive_s = 2;
    bad.drivers[0].transport.port = 70000;
    bad.drivers[0].devices[0].unit_id = 300;
    bad.drivers[0].poll_intervall = "1s";
    const r = await rig.hv.request("config/set", { id: "set-bad", config: bad });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe("ConfigInvalid");
    const problems = (r.error?.details as { problems: { path: string }[] }).problems
      .map((p) => p.path)
      .sort();
    expect(problems).toEqual([
      "drivers[0].devices[0].unit_id",
      "drivers[0].poll_intervall",
      "drivers[0].transport.port",
      "gateway.name",
      "uplink.keepalive_s",
    ]);
    const after = await rig.hv.request("config/get", { id: "get-2" });
    expect(after.result).toEqual(before.result);
  });

  it("config/set with a driver that cannot start: rolled back, reported, polling continues with the old config", async () => {
    const bad = cfg() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form test edit of a config object
    bad.drivers[0].transport = { type: "rtu", path: "/dev/ttyECLOR-NOPE", baud: 9600 };
    const t0 = Date.now();
    const r = await rig.hv.request(
      "config/set",
      { id: "set-rtu", config: bad },
      { timeoutMs: 40_000 },
    );
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe("CommandFailed");
    expect(r.error?.message).toMatch(/rolled back: driver "lighting"/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(7900);
    const get = await rig.hv.request("config/get", { id: "get-3" });
    expect((get.result as { source: string }).source).toBe("file");
    // Polling goes on over TCP with the old configuration: the simulator gets new requests.
    const polls = dali.requests;
    await waitFor(() => dali.requests > polls + 3, 5000, "polls after the rollback");
    expect(rig.run.agent.driverStatus()[0]?.devices[0]?.online).toBe(true);
  }, 60_000); // the 8 s window, then the rollback

  it("config/set that changes one point: applied, versioned, and kept over a restart", async () => {
    const next = cfg() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form test edit of a config object
    next.drivers[0].poll_interval = "300ms";
    const r = await rig.hv.request(
      "config/set",
      { id: "set-ok", config: next },
      { timeoutMs: 20_000 },
    );
    expect(r).toMatchObject({
      ok: true,
      result: { applied: true, restarted: ["lighting"], started: [], stopped: [] },
    });
    const version = (r.result as { version: number }).version;
    await rig.run.stop();
    rig.run = await rig.harness.start();
    await rig.hv.waitReady();
    const get = await rig.hv.request("config/get", { id: "get-4" });
    expect(get.result).toMatchObject({ version, source: "remote", who: "hypervisor" });
    // The technician sees it with `eclor-edge config show` (built CLI, read-only on the store).
    const shown = JSON.parse(
      execFileSync(
        process.execPath,
        [cli, "config", "show", "--config", rig.run.configPath, "--json"],
        { encoding: "utf8" },
      ),
    ) as Record<string, unknown>;
    expect(shown).toMatchObject({
      source: "remote",
      version,
      who: "hypervisor",
      reason: expect.stringMatching(/has not changed since it was applied/),
    });
    expect(
      (shown.config as { drivers: { poll_interval: string }[] }).drivers[0]!.poll_interval,
    ).toBe("300ms");
    const human = execFileSync(
      process.execPath,
      [cli, "config", "show", "--config", rig.run.configPath],
      { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
    );
    expect(human).toMatch(
      new RegExp(`in force {5}remote configuration v${version}, by hypervisor`),
    );
    // A technician edits the file: the file wins at the next start.
    rig.harness.writeConfig({ ...cfg(), gateway: { id: GW, name: "Mairie (edited on site)" } });
    await rig.run.stop();
    rig.run = await rig.harness.start();
    await rig.hv.waitReady();
    const get2 = await rig.hv.request("config/get", { id: "get-5" });
    expect(get2.result).toMatchObject({ source: "file", who: "local" });
    const after = JSON.parse(
      execFileSync(
        process.execPath,
        [cli, "config", "show", "--config", rig.run.configPath, "--json"],
        { encoding: "utf8" },
      ),
    ) as Record<string, unknown>;
    expect(after).toMatchObject({ source: "file", who: "local" });
    expect(
      (after.versions as { source: string; status: string }[])
        .map((v) => `${v.source}:${v.status}`)
        .slice(0, 3),
    ).toEqual(["file:active", "remote:superseded", "remote:rolled_back"]);
  }, 90_000); // two agent restarts and three CLI processes
});

describe("history and replay", () => {
  it("return exactly the stored readings of the range", async () => {
    await waitFor(
      () => [...rig.hv.telemetry().values()].filter((r) => r.n === "dali/lamp2_level").length > 3,
      10_000,
      "lamp2_level telemetry",
    );
    const got = [...rig.hv.telemetry().values()]
      .filter((r) => r.n === "dali/lamp2_level")
      .sort((x, y) => (x.seq as number) - (y.seq as number));
    const from = Math.floor((got[0]!.t as number) * 1000);
    // Readings of one point are stored in acquisition order: every lamp2_level reading older than
    // the last one received is already in the store, so the range is stable while polling goes on.
    const to = Math.floor((got.at(-1)!.t as number) * 1000);
    rig.run.agent.store.flush();
    const stored = rig.run.agent.store.db
      .prepare(
        "SELECT seq FROM outbox WHERE stream = 'telemetry' AND name = 'dali/lamp2_level' AND ts >= ? AND ts < ? ORDER BY seq",
      )
      .pluck()
      .all(from, to) as number[];
    // Paged: 2 per page.
    const seen: Record<string, unknown>[] = [];
    let after: number | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await rig.hv.request("history", {
        id: `h-${page}`,
        device: "dali",
        point: "lamp2_level",
        from,
        to,
        limit: 2,
        ...(after ? { after_seq: after } : {}),
      });
      const res = resultSchemas.history.parse(r.result);
      seen.push(...res.records);
      if (res.next_after_seq === null) break;
      after = res.next_after_seq;
    }
    expect(seen.map((r) => r.seq)).toEqual(stored);
    // Identical to what the hypervisor received live, for the records it received.
    const live = rig.hv.telemetry();
    for (const r of seen)
      if (live.has(r.seq as number)) expect(r).toEqual(live.get(r.seq as number));

    const seqs = [...live.keys()].sort((a, b) => a - b);
    const [a, b] = [seqs[2]!, seqs[12]!];
    const mark = rig.hv.received.length;
    const rep = await rig.hv.request("replay", { id: "rp-1", from_seq: a, to_seq: b });
    const all = rig.run.agent.store.db
      .prepare("SELECT seq FROM outbox WHERE seq BETWEEN ? AND ? ORDER BY seq")
      .pluck()
      .all(a, b) as number[];
    expect(rep.result).toEqual({
      epoch: rig.run.agent.store.epoch,
      from_seq: a,
      to_seq: b,
      count: all.length,
      missing: b - a + 1 - all.length,
      never_assigned: null,
    });
    await waitFor(
      () => {
        const again = rig.hv.received
          .slice(mark)
          .flatMap((m) =>
            m.topic.endsWith("/telemetry") || m.topic.endsWith("/events")
              ? (m.body as { records: { seq: number }[] }).records.map((r) => r.seq)
              : [],
          );
        return all.every((s) => again.includes(s));
      },
      5000,
      "replayed records",
    );
  });
});
