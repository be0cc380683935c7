/**
 * Clock trust: never synchronised since boot, sync unknown, a wall-clock jump against the
 * monotonic clock (until a synchronisation newer than the jump), and the timesyncd file.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ClockGuard, type ClockSource, systemClock } from "../../agent/lighting/clock.js";

class Source implements ClockSource {
  wall = Date.parse("2026-10-10T20:00:00Z");
  monoMs = 0;
  sync: number | null | undefined = this.wall - 1000;
  now = () => this.wall;
  mono = () => this.monoMs;
  lastSync = () => this.sync;
  pass(ms: number) {
    this.wall += ms;
    this.monoMs += ms;
  }
}

describe("clock trust", () => {
  it("needs a synchronisation since boot (unless require_sync is false)", () => {
    const s = new Source();
    s.sync = null;
    expect(new ClockGuard(s, { requireSync: true, maxJumpMs: 300_000 }).check()).toEqual({
      trusted: false,
      reason: "no time synchronisation since boot",
    });
    s.sync = undefined;
    expect(new ClockGuard(s, { requireSync: true, maxJumpMs: 300_000 }).check().reason).toMatch(
      /cannot be checked/,
    );
    expect(new ClockGuard(s, { requireSync: false, maxJumpMs: 300_000 }).check().trusted).toBe(
      true,
    );
  });

  it("distrusts a jump larger than max_jump until a newer synchronisation", () => {
    const s = new Source();
    const g = new ClockGuard(s, { requireSync: true, maxJumpMs: 300_000 });
    expect(g.check().trusted).toBe(true);
    s.pass(60_000);
    s.wall += 240_000; // 4 min: within max_jump
    expect(g.check().trusted).toBe(true);
    s.wall -= 3_600_000; // back by an hour
    expect(g.check()).toEqual({
      trusted: false,
      reason: "the wall clock jumped back by 3600 s, not synchronised since",
    });
    s.pass(30_000);
    expect(g.check().trusted).toBe(false);
    s.sync = s.wall;
    expect(g.check()).toEqual({ trusted: true, reason: "synchronised" });
  });

  it("trusts a jump that comes with a new synchronisation (the sync correcting the clock)", () => {
    const s = new Source();
    const g = new ClockGuard(s, { requireSync: true, maxJumpMs: 300_000 });
    expect(g.check().trusted).toBe(true);
    s.wall += 2 * 3_600_000;
    s.sync = s.wall;
    expect(g.check().trusted).toBe(true);
  });

  it("reads systemd-timesyncd's file", () => {
    const dir = mkdtempSync(join(tmpdir(), "eclor-clock-"));
    try {
      const file = join(dir, "synchronized");
      writeFileSync(file, "");
      const c = systemClock(file);
      expect(c.lastSync()).toBeGreaterThan(0);
      expect(Math.abs(c.now() - Date.now())).toBeLessThan(5000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
