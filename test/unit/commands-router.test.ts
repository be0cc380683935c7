import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeTarget, TempDb, makeRouter } from "./commands-helpers.js";

let tmp: TempDb;
let target: FakeTarget;
beforeEach(() => {
  tmp = new TempDb();
  target = new FakeTarget();
});
afterEach(() => tmp.dispose());

const dim = (id: string, value: unknown) => ({
  id,
  device: "lamp-1",
  values: [{ point: "dim", value: value as number }],
});

describe("command router: allow-list and ranges", () => {
  it("writes a valid value, reports the read-back and audits it", async () => {
    const { router, audit, events } = makeRouter(tmp.db, target);
    const r = await router.write(dim("c1", 40), "hypervisor");
    expect(r).toEqual({
      id: "c1",
      ok: true,
      result: { device: "lamp-1", results: [{ point: "dim", value: 40, ok: true, read_back: 40 }] },
    });
    expect(target.writes).toHaveLength(1);
    expect(target.writes[0]).toMatchObject({
      device: "lamp-1",
      point: "dim",
      value: 40,
      verify: true,
      commandId: "c1",
    });
    expect(audit.list()).toMatchObject([
      {
        who: "hypervisor",
        commandId: "c1",
        device: "lamp-1",
        point: "dim",
        value: 40,
        outcome: "ok",
      },
    ]);
    expect(events).toMatchObject([
      {
        type: "command_audit",
        severity: "info",
        device: "lamp-1",
        data: { who: "hypervisor", outcome: "ok", value: 40 },
      },
    ]);
  });

  it.each([
    [
      "unknown device",
      { id: "x", device: "nope", values: [{ point: "dim", value: 1 }] },
      "DeviceUnknown",
    ],
    [
      "unknown point",
      { id: "x", device: "lamp-1", values: [{ point: "nope", value: 1 }] },
      "PointUnknown",
    ],
    [
      "not writable",
      { id: "x", device: "lamp-1", values: [{ point: "power", value: 1 }] },
      "CommandRefused",
    ],
    [
      "wrong type",
      { id: "x", device: "lamp-1", values: [{ point: "dim", value: "50" }] },
      "CommandInvalid",
    ],
    [
      "boolean for a number",
      { id: "x", device: "lamp-1", values: [{ point: "dim", value: true }] },
      "CommandInvalid",
    ],
    [
      "NaN",
      { id: "x", device: "lamp-1", values: [{ point: "dim", value: Number.NaN }] },
      "CommandInvalid",
    ],
    [
      "above max",
      { id: "x", device: "lamp-1", values: [{ point: "dim", value: 101 }] },
      "CommandRefused",
    ],
    [
      "below min",
      { id: "x", device: "lamp-1", values: [{ point: "dim", value: -1 }] },
      "CommandRefused",
    ],
    [
      "one bad point among good ones",
      {
        id: "x",
        device: "lamp-1",
        values: [
          { point: "on", value: true },
          { point: "dim", value: 500 },
        ],
      },
      "CommandRefused",
    ],
  ])("refuses %s, writes nothing, audits the refusal", async (_what, cmd, code) => {
    const { router, audit } = makeRouter(tmp.db, target);
    const r = await router.write(cmd, "local");
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe(code);
    expect(r.error.message).toMatch(/nothing was written|unknown device/);
    expect(target.writes).toHaveLength(0);
    expect(audit.list().every((a) => a.outcome === "refused" && a.who === "local")).toBe(true);
    expect(audit.list().length).toBeGreaterThan(0);
  });

  it("lists every problem of a command in details", async () => {
    const { router } = makeRouter(tmp.db, target);
    const r = await router.write(
      {
        id: "m",
        device: "lamp-1",
        values: [
          { point: "dim", value: 500 },
          { point: "power", value: 3 },
          { point: "zz", value: 1 },
        ],
      },
      "hypervisor",
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect((r.error.details?.problems as unknown[]).length).toBe(3);
  });
});

describe("command router: idempotency by command id", () => {
  it("a repeated id returns the stored result and writes once", async () => {
    const { router, audit } = makeRouter(tmp.db, target);
    const a = await router.write(dim("same", 30), "hypervisor");
    const b = await router.write(dim("same", 30), "hypervisor");
    expect(target.writes).toHaveLength(1);
    expect(b).toEqual({ ...a, duplicate: true });
    expect(audit.list()[0]).toMatchObject({ outcome: "duplicate", commandId: "same" });
  });

  it("concurrent requests with the same id write once", async () => {
    const { router } = makeRouter(tmp.db, target);
    const [a, b] = await Promise.all([
      router.write(dim("cc", 10), "hypervisor"),
      router.write(dim("cc", 10), "hypervisor"),
    ]);
    expect(target.writes).toHaveLength(1);
    expect(a.ok && b.ok).toBe(true);
  });

  it("remembers ids across a restart (new router on the same SQLite file)", async () => {
    await makeRouter(tmp.db, target).router.write(dim("persist", 55), "hypervisor");
    const db = tmp.reopen();
    const again = await makeRouter(db, target).router.write(dim("persist", 55), "hypervisor");
    expect(target.writes).toHaveLength(1);
    expect(again).toMatchObject({ id: "persist", ok: true, duplicate: true });
  });

  it("never re-executes an id left pending by a crash", async () => {
    const { journal } = makeRouter(tmp.db, target);
    journal.begin("crashed", "write", "hypervisor", "whatever");
    const db = tmp.reopen();
    const r = await makeRouter(db, target).router.write(dim("crashed", 20), "hypervisor");
    expect(target.writes).toHaveLength(0);
    expect(r).toMatchObject({ ok: false, duplicate: true, error: { code: "CommandFailed" } });
    if (!r.ok) expect(r.error.message).toMatch(/outcome is unknown/);
  });

  it("refuses a known id reused for a different write", async () => {
    const { router } = makeRouter(tmp.db, target);
    await router.write(dim("reuse", 20), "hypervisor");
    const r = await router.write(dim("reuse", 21), "hypervisor");
    expect(r).toMatchObject({ ok: false, error: { code: "CommandInvalid" } });
    expect(target.writes).toHaveLength(1);
  });

  it("does not journal refusals, so the same id can be retried once fixed", async () => {
    const { router } = makeRouter(tmp.db, target);
    expect((await router.write(dim("retry", 500), "hypervisor")).ok).toBe(false);
    expect((await router.write(dim("retry", 50), "hypervisor")).ok).toBe(true);
    expect(target.writes).toHaveLength(1);
  });
});

describe("command router: rate limit, timeout, failures", () => {
  it("limits writes per point with a token bucket; refused writes cost nothing", async () => {
    let now = 1_000_000;
    const { router } = makeRouter(tmp.db, target, { burst: 2, perMinute: 6, now: () => now });
    expect((await router.write(dim("r1", 1), "hypervisor")).ok).toBe(true);
    expect((await router.write(dim("bad", 900), "hypervisor")).ok).toBe(false);
    expect((await router.write(dim("r2", 2), "hypervisor")).ok).toBe(true);
    const limited = await router.write(dim("r3", 3), "hypervisor");
    expect(limited).toMatchObject({ ok: false, error: { code: "CommandRateLimited" } });
    if (!limited.ok) expect(limited.error.details?.retry_after_ms).toBe(10_000);
    // Another point has its own bucket.
    expect(
      (
        await router.write(
          { id: "o1", device: "lamp-1", values: [{ point: "on", value: true }] },
          "hypervisor",
        )
      ).ok,
    ).toBe(true);
    now += 10_000;
    expect((await router.write(dim("r3", 3), "hypervisor")).ok).toBe(true);
    expect(target.writes.map((w) => w.value)).toEqual([1, 2, true, 3]);
  });

  it("times out a write that does not finish, journals it, never retries it", async () => {
    target.behaviour = "hang";
    const { router, audit } = makeRouter(tmp.db, target, { timeoutMs: 5000 });
    const r = await router.write({ ...dim("slow", 5), timeoutMs: 50 }, "hypervisor");
    expect(r).toMatchObject({ ok: false, error: { code: "CommandTimeout" } });
    expect(audit.list()[0]).toMatchObject({ outcome: "timeout" });
    const again = await router.write({ ...dim("slow", 5), timeoutMs: 50 }, "hypervisor");
    expect(again).toMatchObject({ ok: false, duplicate: true, error: { code: "CommandTimeout" } });
    expect(target.writes).toHaveLength(1);
  });

  it("stops at the first failing point and reports each point", async () => {
    target.behaviour = "reject";
    const { router, audit } = makeRouter(tmp.db, target);
    const r = await router.write(
      {
        id: "f",
        device: "lamp-1",
        values: [
          { point: "dim", value: 5 },
          { point: "on", value: false },
        ],
      },
      "hypervisor",
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.message).toMatch(/slave device failure/);
    expect(r.error.details?.results).toEqual([
      { point: "dim", value: 5, ok: false, detail: expect.stringMatching(/slave device failure/) },
      { point: "on", value: false, ok: false, detail: "not attempted: an earlier point failed" },
    ]);
    expect(target.writes).toHaveLength(1);
    expect(audit.list().map((a) => a.outcome)).toEqual(["failed", "failed"]);
  });

  it("reports a write the device did not accept as failed", async () => {
    target.behaviour = "nack";
    const { router } = makeRouter(tmp.db, target);
    const r = await router.write(dim("n", 5), "hypervisor");
    expect(r).toMatchObject({ ok: false, error: { code: "CommandFailed" } });
  });
});
