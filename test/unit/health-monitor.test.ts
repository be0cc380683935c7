/**
 * The rules of the health model (agent/health/monitor.ts) on a real SQLite store: which findings
 * degrade, which fail, when the watchdog may no longer be pinged, and when the `state` message
 * must be republished.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HealthMonitor, driverHealth, type HealthSources } from "../../agent/health/monitor.js";
import { Store } from "../../agent/store/index.js";
import type { DriverStatus } from "../../drivers/driver.js";
import { waitFor } from "../helpers/ports.js";

let dir: string;
const stores: Store[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "eclor-health-unit-"));
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function store(path = join(dir, "store.db")): Store {
  const s = new Store({
    path,
    max_bytes: 1 << 24,
    flush_ms: 20,
    flush_count: 1000,
    history_days: 30,
    cleanup_interval_ms: 3_600_000,
    backfill_after_ms: 3_600_000,
    memory_max: 1000,
    retry_ms: 100_000, // the store's own retry stays out of the way
    logger: pino({ level: "silent" }),
  }).open();
  stores.push(s);
  return s;
}

function rig(over: Partial<HealthSources> = {}, opts: { lagMaxMs?: number } = {}) {
  let t = 1_000_000;
  const uplink = { connected: true, lastError: undefined as string | undefined };
  const drivers: DriverStatus[] = [];
  const failures = new Map<string, { kind: string; reason: string }>();
  const src: HealthSources = {
    store: over.store ?? store(),
    uplink,
    drivers: () => drivers,
    failures: () => failures,
    retryMs: 1000,
    ...over,
  };
  const m = new HealthMonitor(src, { intervalMs: 60_000, probeIdleMs: 0, now: () => t, ...opts });
  return { m, uplink, drivers, failures, advance: (ms: number) => (t += ms) };
}

const dev = (over: Partial<DriverStatus["devices"][number]> = {}) => ({
  id: "d",
  online: false,
  errorCount: 0,
  ...over,
});

describe("driverHealth", () => {
  it("started while some device answers, or while none was tried yet", () => {
    const base = { id: "b", kind: "modbus", running: true };
    expect(driverHealth({ ...base, devices: [] }).state).toBe("started");
    expect(driverHealth({ ...base, devices: [dev()] }).state).toBe("started");
    expect(
      driverHealth({ ...base, devices: [dev({ online: true }), dev({ errorCount: 3 })] }).state,
    ).toBe("started");
  });
  it("failed when every device is offline with an error, with that error in words", () => {
    const h = driverHealth({
      id: "b",
      kind: "tic",
      running: true,
      detail: "port waiting",
      devices: [dev({ errorCount: 1, lastError: "cannot open /dev/ttyUSB9" })],
    });
    expect(h).toEqual({
      id: "b",
      kind: "tic",
      state: "failed",
      error: "no device answers: cannot open /dev/ttyUSB9",
    });
  });
  it("stopped when not running", () => {
    expect(driverHealth({ id: "b", kind: "mbus", running: false, devices: [] }).state).toBe(
      "stopped",
    );
  });
});

describe("HealthMonitor", () => {
  it("ok when everything works; a driver that failed to start degrades, named", () => {
    const r = rig();
    expect(r.m.check()).toMatchObject({ status: "ok", reasons: [] });
    r.failures.set("lora", { kind: "lorawan", reason: "EE0401 codec x cannot be read" });
    const h = r.m.check();
    expect(h.status).toBe("degraded");
    expect(h.reasons).toEqual([
      {
        component: "driver",
        driver: "lora",
        severity: "degraded",
        message: 'driver "lora" (lorawan) failed: EE0401 codec x cannot be read',
      },
    ]);
    expect(h.drivers).toEqual([
      { id: "lora", kind: "lorawan", state: "failed", error: "EE0401 codec x cannot be read" },
    ]);
  });

  it("the uplink down degrades and never stops the watchdog", () => {
    const r = rig();
    r.m.start();
    r.uplink.connected = false;
    r.uplink.lastError = "EE0301 cannot connect";
    expect(r.m.check().status).toBe("degraded");
    r.advance(3_600_000);
    expect(r.m.watchdogOk()).toBe(true);
    r.m.stop();
  });

  it("a store corrupt since the start fails, but keeps the watchdog pinged (no restart loop)", () => {
    const path = join(dir, "bad.db");
    writeFileSync(path, Buffer.alloc(4096, 0x5a));
    const r = rig({ store: store(path) });
    r.m.start();
    const h = r.m.check();
    expect(h.status).toBe("failed");
    expect(h.store.writable).toBe(false);
    expect(h.reasons[0]!.message).toMatch(/^the store cannot be written: EE0202 .*bad\.db/);
    r.advance(60_000);
    expect(r.m.watchdogOk()).toBe(true);
    r.m.stop();
  });

  it("a store that stops taking writes: the idle probe finds it, the watchdog stops after 3 retries", () => {
    const s = store();
    const r = rig({ store: s });
    r.m.start();
    r.m.tick(); // probes the idle store: fine
    expect(r.m.check().store.writable).toBe(true);
    s.db.close(); // the handle goes bad under the agent
    r.m.tick();
    const h = r.m.check();
    expect(h.status).toBe("failed");
    expect(h.store.error).toMatch(/write probe failed: .*not open/);
    expect(r.m.watchdogOk()).toBe(true);
    r.advance(2999);
    expect(r.m.watchdogOk()).toBe(true);
    r.advance(1);
    expect(r.m.watchdogOk()).toBe(false);
    r.m.stop();
  });

  it("tells of a change of status or reasons, not of a change of wording", () => {
    const r = rig();
    r.m.start();
    const seen: string[] = [];
    r.m.onChange((h) => seen.push(`${h.status}:${h.reasons.map((x) => x.driver).join()}`));
    r.drivers.push({
      id: "linky",
      kind: "tic",
      running: true,
      devices: [dev({ errorCount: 1, lastError: "retrying in 2.1 s" })],
    });
    r.m.tick();
    r.drivers[0]!.devices[0]!.lastError = "retrying in 4.3 s";
    r.m.tick();
    r.drivers[0]!.devices[0]!.online = true;
    r.m.tick();
    expect(seen).toEqual(["degraded:linky", "ok:"]);
    r.m.stop();
  });

  it("a blocked event loop shows as degraded, measured by monitorEventLoopDelay", async () => {
    const r = rig({}, { lagMaxMs: 50 });
    r.m.start();
    // Block the loop well beyond the limit (the figure is not asserted, only the verdict).
    await new Promise((res) => setTimeout(res, 50));
    const until = performance.now() + 200;
    while (performance.now() < until) {
      /* busy: nothing else can run */
    }
    // The histogram's own timer records the delay when it next fires (a reset before that would
    // drop it: Node's histogram restarts from its next sample): yield to the timers phase first.
    await new Promise((res) => setTimeout(res, 1));
    const h = await waitFor(
      () => {
        r.m.tick();
        const x = r.m.check();
        return x.status === "degraded" ? x : undefined;
      },
      5000,
      "the blocked loop to be reported",
    );
    expect(h.reasons.map((x) => x.component)).toEqual(["event_loop"]);
    expect(h.eventLoop.lagMaxMs).toBeGreaterThan(50);
    // Calm windows: ok again.
    await waitFor(() => (r.m.tick(), r.m.check().status === "ok"), 5000, "a calm window");
    r.m.stop();
  });
});
