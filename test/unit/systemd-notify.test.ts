import { afterEach, describe, expect, it, vi } from "vitest";
import { createNotifier, watchdogIntervalMs } from "../../agent/systemd/notify.js";

function fakeLogger() {
  return { debug: vi.fn(), warn: vi.fn() };
}

function recorder() {
  const sent: string[] = [];
  return { sent, load: () => ({ send: (s: string) => void sent.push(s) }) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("watchdogIntervalMs (sd_watchdog_enabled semantics)", () => {
  it("is half of WATCHDOG_USEC, in ms", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "42" }, 42)).toBe(15_000);
  });
  it("is 0 when unset, malformed, or meant for another PID", () => {
    expect(watchdogIntervalMs({}, 42)).toBe(0);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "abc" }, 42)).toBe(0);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "-5" }, 42)).toBe(0);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "7" }, 42)).toBe(0);
  });
});

describe("createNotifier", () => {
  it("without NOTIFY_SOCKET: never loads the helper, no-ops, one debug line", () => {
    const log = fakeLogger();
    const load = vi.fn();
    const n = createNotifier({ env: { WATCHDOG_USEC: "1000000" }, logger: log, load });
    n.ready("up");
    n.status("x");
    n.watchdog.start();
    n.stopping();
    expect(load).not.toHaveBeenCalled();
    expect(n.active).toBe(false);
    expect(n.watchdog.intervalMs).toBe(0);
    expect(log.debug).toHaveBeenCalledTimes(1);
    expect(String(log.debug.mock.calls[0]![0])).toMatch(/NOTIFY_SOCKET is not set/);
    expect(log.warn).not.toHaveBeenCalled();
  });

  it("when the native helper cannot load: no-ops, one debug line naming the Type=exec unit", () => {
    const log = fakeLogger();
    const n = createNotifier({
      env: { NOTIFY_SOCKET: "/run/systemd/notify", WATCHDOG_USEC: "1000000" },
      logger: log,
      load: () => {
        throw new Error("Cannot find module 'sd-notify'");
      },
    });
    expect(() => {
      n.ready();
      n.status("s");
      n.watchdog.start();
      n.stopping();
    }).not.toThrow();
    expect(n.active).toBe(false);
    expect(log.debug).toHaveBeenCalledTimes(1);
    expect(String(log.debug.mock.calls[0]![1])).toMatch(/sd-notify .*Type=exec/);
  });

  it("sends READY/STATUS/STOPPING as sd_notify state strings; STATUS stays one line", () => {
    const r = recorder();
    const n = createNotifier({ env: { NOTIFY_SOCKET: "@x" }, load: r.load });
    expect(n.active).toBe(true);
    n.ready("store open, uplink connecting");
    n.status("line1\nREADY=1");
    n.stopping("flushing the store");
    expect(r.sent).toEqual([
      "READY=1\nSTATUS=store open, uplink connecting",
      "STATUS=line1 READY=1",
      "STOPPING=1\nSTATUS=flushing the store",
    ]);
  });

  it("pings WATCHDOG=1 at half of WATCHDOG_USEC, skips pings while unhealthy, stops on stopping()", () => {
    vi.useFakeTimers();
    const r = recorder();
    let healthy = true;
    const n = createNotifier({
      env: { NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "2000000" },
      load: r.load,
    });
    expect(n.watchdog.intervalMs).toBe(1000);
    n.watchdog.start(() => healthy);
    n.watchdog.start(); // idempotent: still one timer
    vi.advanceTimersByTime(3000);
    expect(r.sent.filter((s) => s === "WATCHDOG=1")).toHaveLength(3);
    healthy = false;
    vi.advanceTimersByTime(5000);
    expect(r.sent.filter((s) => s === "WATCHDOG=1")).toHaveLength(3);
    healthy = true;
    vi.advanceTimersByTime(1000);
    expect(r.sent.filter((s) => s === "WATCHDOG=1")).toHaveLength(4);
    n.stopping();
    vi.advanceTimersByTime(5000);
    expect(r.sent.filter((s) => s === "WATCHDOG=1")).toHaveLength(4);
    expect(r.sent.at(-1)).toBe("STOPPING=1");
  });

  it("a failing send never throws and is reported once", () => {
    const log = fakeLogger();
    const n = createNotifier({
      env: { NOTIFY_SOCKET: "@x" },
      logger: log,
      load: () => ({
        send: () => {
          throw new Error("EPIPE");
        },
      }),
    });
    expect(() => {
      n.ready();
      n.status("a");
      n.status("b");
    }).not.toThrow();
    expect(log.warn).toHaveBeenCalledTimes(1);
  });
});
