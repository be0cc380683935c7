/** Report by exception and the sanitize stage, driven by the config schema's point fields. */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Reading } from "../../drivers/driver.js";
import { Pipeline, rulesFromConfig } from "../../agent/pipeline/index.js";
import { deadband, duration } from "../../config/common.js";

const silent = pino({ level: "silent" });

function pipe(points: { id: string; deadband?: number | string; max_interval?: string }[]) {
  const cfgPoints = points.map((p) => ({
    ...p,
    ...(p.deadband !== undefined ? { deadband: deadband.parse(p.deadband) } : {}),
    ...(p.max_interval ? { max_interval: duration.parse(p.max_interval) } : {}),
  }));
  const out: Reading[] = [];
  const p = new Pipeline(
    rulesFromConfig([{ devices: [{ id: "d", points: cfgPoints }] }]),
    (r) => out.push(...r),
    silent,
  );
  const send = (
    point: string,
    value: Reading["value"],
    ts: number,
    quality: Reading["quality"] = "good",
  ): boolean => {
    const n = out.length;
    p.ingest([{ device: "d", point, value, ts, quality }]);
    return out.length > n;
  };
  return { p, out, send };
}

describe("report by exception", () => {
  it("absolute deadband: forwards only moves larger than the deadband since the last forwarded value", () => {
    const { send } = pipe([{ id: "t", deadband: 0.5 }]);
    expect(send("t", 20, 0)).toBe(true); // first value
    expect(send("t", 20.3, 1)).toBe(false);
    expect(send("t", 20.5, 2)).toBe(false); // exactly the deadband is not a move
    expect(send("t", 20.6, 3)).toBe(true); // a slow drift crosses it (compared with 20, not 20.5)
    expect(send("t", 20.2, 4)).toBe(false);
    expect(send("t", 19.9, 5)).toBe(true);
  });

  it("percent deadband is relative to the last forwarded value; from 0 any change counts", () => {
    const { send } = pipe([{ id: "p", deadband: "2%" }]);
    expect(send("p", 1000, 0)).toBe(true);
    expect(send("p", 1019, 1)).toBe(false);
    expect(send("p", 979, 2)).toBe(true); // -2.1 %
    expect(send("p", 0, 3)).toBe(true);
    expect(send("p", 0.001, 4)).toBe(true);
  });

  it("max_interval forwards an unchanged value once it elapsed", () => {
    const { send } = pipe([{ id: "e", deadband: 10, max_interval: "15m" }]);
    expect(send("e", 5, 0)).toBe(true);
    expect(send("e", 5, 14 * 60_000)).toBe(false);
    expect(send("e", 5, 15 * 60_000)).toBe(true);
    expect(send("e", 6, 16 * 60_000)).toBe(false);
  });

  it("max_interval alone: every change, and at least every interval", () => {
    const { send } = pipe([{ id: "s", max_interval: "1m" }]);
    expect(send("s", true, 0)).toBe(true);
    expect(send("s", true, 1000)).toBe(false);
    expect(send("s", false, 2000)).toBe(true);
    expect(send("s", false, 62_000)).toBe(true);
  });

  it("quality changes always pass; repeated identical failures are filtered like values", () => {
    const { send } = pipe([{ id: "t", deadband: 1 }]);
    expect(send("t", 20, 0)).toBe(true);
    expect(send("t", null, 1, "timeout")).toBe(true);
    expect(send("t", null, 2, "timeout")).toBe(false);
    expect(send("t", 20, 3)).toBe(true);
  });

  it("points without deadband or max_interval, and explicit reads, are always forwarded", () => {
    const { p, out, send } = pipe([{ id: "t", deadband: 100 }]);
    expect(send("other", 1, 0)).toBe(true);
    expect(send("other", 1, 1)).toBe(true);
    expect(send("t", 1, 0)).toBe(true);
    p.ingest([{ device: "d", point: "t", value: 1, ts: 2, quality: "good" }], {
      bypassDeadband: true,
    });
    expect(out).toHaveLength(4);
  });
});

describe("report by exception on batches", () => {
  const r = (device: string, point: string, value: number, ts: number): Reading => ({
    device,
    point,
    value,
    ts,
    quality: "good",
  });

  it("filters inside a batch of several devices, keeping order, and leaves the input untouched", () => {
    const rules = rulesFromConfig([
      {
        devices: [
          {
            id: "a",
            points: [
              { id: "x", deadband: 1 },
              { id: "y", deadband: 1 },
            ],
          },
          { id: "b", points: [{ id: "x", deadband: 1 }] },
        ],
      },
    ]);
    const batches: (readonly Reading[])[] = [];
    const p = new Pipeline(rules, (rs) => batches.push([...rs]), silent);
    p.ingest([r("a", "x", 1, 0), r("a", "y", 1, 0), r("b", "x", 1, 0)]);
    const second = [r("a", "x", 1.5, 1), r("a", "y", 5, 1), r("b", "x", 1.2, 1), r("b", "z", 0, 1)];
    p.ingest(second);
    expect(batches).toHaveLength(2);
    expect(batches[1]!.map((x) => `${x.device}/${x.point}`)).toEqual(["a/y", "b/z"]);
    expect(second).toHaveLength(4);
    expect(p.counters).toEqual({ in: 7, out: 5, filtered: 2 });
  });

  it("rules added later apply to points already seen, from their next reading", () => {
    const out: Reading[] = [];
    const p = new Pipeline(
      rulesFromConfig([{ devices: [{ id: "d", points: [{ id: "t", deadband: 1 }] }] }]),
      (rs) => out.push(...rs),
      silent,
    );
    p.ingest([r("d", "u", 1, 0)]);
    p.ingest([r("d", "u", 1, 1)]); // no rule yet: forwarded
    p.addRules(rulesFromConfig([{ devices: [{ id: "d", points: [{ id: "u", deadband: 5 }] }] }]));
    p.ingest([r("d", "u", 2, 2)]); // first reading under the rule: forwarded
    p.ingest([r("d", "u", 3, 3)]); // within the deadband of 2
    p.ingest([r("d", "u", 8, 4)]);
    expect(out.map((x) => x.value)).toEqual([1, 1, 2, 8]);
  });
});

describe("sanitize", () => {
  it("a non-finite number or a missing good value becomes a codec_error reading, not a lost one", () => {
    const { p, out } = pipe([]);
    p.ingest([
      { device: "d", point: "a", value: Number.NaN, ts: 1, quality: "good" },
      { device: "d", point: "b", value: null, ts: 1, quality: "good" },
      { device: "d", point: "c", value: 3, ts: 1, quality: "good" },
    ]);
    expect(out.map((r) => [r.point, r.quality, r.value])).toEqual([
      ["a", "codec_error", null],
      ["b", "codec_error", null],
      ["c", "good", 3],
    ]);
    expect(out[0]!.detail).toBe("driver produced NaN");
  });
});
