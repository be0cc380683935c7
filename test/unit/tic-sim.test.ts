/** The TIC meter simulator produces frames the driver's parser accepts, with growing indexes. */
import { describe, expect, it } from "vitest";
import { type TicFrame, TicStreamParser } from "../../drivers/tic/frame.js";
import { decodeGroup } from "../../drivers/tic/labels.js";
import { TicMeterSim, horodate } from "../../sim/tic/meter.js";

function run(sim: TicMeterSim, n: number): { frames: TicFrame[]; parser: TicStreamParser } {
  const frames: TicFrame[] = [];
  const parser = new TicStreamParser((f) => frames.push(f));
  for (let k = 0; k < n; k++) parser.feed(sim.nextFrame());
  return { frames, parser };
}

describe("TIC meter simulator", () => {
  for (const mode of ["historic", "standard"] as const) {
    it(`${mode}: every group verifies and decodes; indexes grow`, () => {
      let t = Date.UTC(2026, 0, 15, 12, 0, 0);
      const sim = new TicMeterSim({ mode, now: () => (t += 60_000) });
      const { frames } = run(sim, 30);
      expect(frames).toHaveLength(30);
      const index = mode === "historic" ? "HCHP" : "EAST";
      let prev = -1;
      for (const f of frames) {
        expect(f.mode).toBe(mode);
        expect(f.dropped).toBe(0);
        const dec = f.groups.map((g) => decodeGroup(mode, g));
        expect(dec.filter((d) => !d.ok)).toEqual([]);
        const v = dec.flatMap((d) =>
          d.ok && d.decoded.label === index ? [d.decoded.value as number] : [],
        )[0]!;
        expect(v).toBeGreaterThan(prev);
        prev = v;
      }
    });
  }

  it("corrupts and aborts frames on request, and the parser counts them", () => {
    const sim = new TicMeterSim({ mode: "historic", corruptEvery: 2, abortEvery: 5 });
    const { frames, parser } = run(sim, 10);
    expect(parser.counters.abortedFrames).toBe(2);
    expect(frames).toHaveLength(8);
    expect(frames.filter((f) => f.dropped === 1)).toHaveLength(4);
  });

  it("marks summer and winter time in horodates", () => {
    expect(horodate(Date.UTC(2026, 6, 1, 10, 0, 0))).toBe("E260701120000");
    expect(horodate(Date.UTC(2026, 0, 1, 10, 0, 0))).toBe("H260101110000");
  });
});
