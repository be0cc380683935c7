/**
 * The rules of the packet-forwarder port (issue 14.4), one by one: the address binding of a
 * concentrator (port changes allowed, another IP refused until the bound one was silent for
 * rebind_after, a pinned address never moves), the per-source table of refused datagrams
 * (bounded), and the throttle of security events over a burst (fake timers: one event, then one
 * summary per interval whose counts add up).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { GatewayAdmission } from "../../drivers/lorawan/admission.js";
import { EventThrottle } from "../../drivers/lorawan/event-throttle.js";
import type { GatewayInfo } from "../../drivers/lorawan/gateways.js";

const counters = () => ({
  gateway_unknown: 0,
  gateway_table_full: 0,
  gateway_wrong_source: 0,
  gateway_moved: 0,
});
const EUI = "aa555a0000000000";

describe("gateway admission", () => {
  it("binds a concentrator to its first IP; another IP only after rebind_after of silence", () => {
    const table = new Map<string, GatewayInfo>();
    const c = counters();
    const a = new GatewayAdmission({ allow: undefined, max: 4, rebindAfterMs: 120_000 }, table, c);
    expect(a.admit(EUI, "127.0.0.1", 0)).toMatchObject({ ok: true, isNew: true });
    table.get(EUI)!.pull = { address: "127.0.0.1", port: 4000, at: 0 };
    expect(a.admit(EUI, "::ffff:127.0.0.1", 1000)).toMatchObject({ ok: true }); // same host
    expect(a.admit(EUI, "127.0.0.2", 60_000)).toMatchObject({ ok: false, cause: "wrong_source" });
    expect(table.get(EUI)!.pull).toMatchObject({ address: "127.0.0.1" }); // not redirected
    // The forger keeps trying; the real one keeps talking: never moves.
    expect(a.admit(EUI, "127.0.0.1", 100_000)).toMatchObject({ ok: true });
    expect(a.admit(EUI, "127.0.0.2", 200_000)).toMatchObject({ ok: false });
    // Silent for 2 min at its address: it moved (new lease), the old downlink path is dropped.
    expect(a.admit(EUI, "127.0.0.2", 221_000)).toMatchObject({ ok: true, moved: "127.0.0.1" });
    expect(table.get(EUI)!.pull).toBeUndefined();
    expect(c).toMatchObject({ gateway_wrong_source: 2, gateway_moved: 1 });
  });

  it("a pinned address never moves; unknown EUIs are counted per source, in a bounded table", () => {
    const table = new Map<string, GatewayInfo>();
    const c = counters();
    const a = new GatewayAdmission(
      { allow: new Map([[EUI, "127.0.0.5"]]), max: 4, rebindAfterMs: 1 },
      table,
      c,
    );
    expect(a.admit(EUI, "127.0.0.1", 0)).toMatchObject({ ok: false, cause: "wrong_source" });
    expect(a.admit(EUI, "127.0.0.5", 0)).toMatchObject({ ok: true });
    expect(a.admit(EUI, "127.0.0.1", 10_000_000)).toMatchObject({ ok: false });
    for (let i = 0; i < 100; i++)
      a.admit(`00000000000000${i.toString(16).padStart(2, "0")}`, `127.1.0.${i}`, i);
    expect(c.gateway_unknown).toBe(100);
    expect(a.refusedSources(100)).toHaveLength(32);
    // 127.0.0.1 (the refused forger) + the first 31 unknown sources; the other 69 are summed.
    expect(a.otherSources).toBe(69);
    expect(table.size).toBe(1);
  });
});

describe("event throttle", () => {
  afterEach(() => vi.useRealTimers());

  it("500 MIC failures in a burst: one event at once, one summary per minute, counts add up", () => {
    vi.useFakeTimers();
    const raised: { message: string; data?: Record<string, unknown> }[] = [];
    const t = new EventThrottle(60_000, (_type, _sev, message, _dev, data) =>
      raised.push({ message, ...(data ? { data } : {}) }),
    );
    for (let i = 0; i < 500; i++)
      t.event("mic:26011bda", "lorawan_mic_failed", "warning", "wrong MIC", "d", { fCnt16: i });
    expect(raised).toHaveLength(1);
    vi.advanceTimersByTime(60_000);
    expect(raised).toHaveLength(2);
    expect(raised[1]!.data).toMatchObject({ count: 499, aggregated: true, fCnt16: 499 });
    // Quiet for a minute: the interval closes without an event; the next failure is raised at once.
    vi.advanceTimersByTime(120_000);
    expect(raised).toHaveLength(2);
    t.event("mic:26011bda", "lorawan_mic_failed", "warning", "wrong MIC", "d");
    expect(raised).toHaveLength(3);
    t.event("mic:26011bda", "lorawan_mic_failed", "warning", "wrong MIC", "d");
    t.flush();
    expect(raised.map((r) => r.data!.count)).toEqual([1, 499, 1, 1]);
  });
});
