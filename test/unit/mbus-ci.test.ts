/**
 * CI fields beyond 72h/73h and the EN 13757-3:2018 FBh extension table, against frames from
 * outside the project (sources and licences in drivers/mbus/testcases/SOURCE.md):
 * - CI 70h application errors: libmbus test/error-frames (BSD-3-Clause) with libmbus's <Error>.
 * - CI 78h (no header): the EN 13757-4 annex P example as cited in m-bus-parser issue #93 and its
 *   test `test_application_layer_no_transport` (volume 876.543 m3, wmbusmeters' decoding).
 * - FBh codes: records of wmbusmeters' simulations/simulation_t1.txt telegrams (GPL-3.0; Lansen
 *   TH, Weptech Munia, Gran-System-S), framed as wired RSP_UD with CI 78h, checked against the
 *   values wmbusmeters prints for them.
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseUserData } from "../../drivers/mbus/data.js";
import { hexToBytes, parseFrame } from "../../drivers/mbus/frame.js";

const cases = join(
  resolve(dirname(fileURLToPath(import.meta.url)), "..", ".."),
  "drivers",
  "mbus",
  "testcases",
);
const read = (dir: string, name: string) =>
  parseUserData(parseFrame(hexToBytes(readFileSync(join(cases, dir, `${name}.hex`), "utf8"))));

describe("CI 70h: the meter names its application error", () => {
  const names = readdirSync(join(cases, "libmbus-errors"))
    .filter((f) => f.endsWith(".hex"))
    .map((f) => f.slice(0, -4));
  it("has the libmbus error frames", () => expect(names.length).toBe(10));
  for (const name of names)
    it(name, () => {
      const xml = readFileSync(join(cases, "libmbus-errors", `${name}.xml`), "utf8");
      const want = /<Error>([^<]*)<\/Error>/.exec(xml)![1]!.replace(/´/g, "").toLowerCase();
      let err: unknown;
      try {
        read("libmbus-errors", name);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 404 }); // DeviceException, not a frame error
      const msg = (err as Error).message.toLowerCase();
      expect(msg).toContain(`application error: ${want}`);
      expect(msg).not.toMatch(/not a supported response/);
    });
});

describe("CI 78h: variable data without header", () => {
  it("EN 13757-4 annex P example: 876.543 m3", () => {
    const d = read("wmbusmeters", "en13757-4_annexP_ci78");
    expect(d.header.id).toBe("");
    expect(d.records).toHaveLength(1);
    expect(d.records[0]).toMatchObject({ quantity: "Volume", unit: "m3" });
    expect(d.records[0]!.value).toBeCloseTo(876.543, 9);
  });
});

describe("VIF FBh extension (EN 13757-3:2018 table 14)", () => {
  it("relative humidity, Lansen TH (wmbusmeters: 43, 43, 42.5 %RH)", () => {
    const rh = read("wmbusmeters", "lansenth_ci78").records.filter(
      (r) => r.quantity === "Relative humidity",
    );
    expect(rh.map((r) => [r.unit, r.value, r.storage])).toEqual([
      ["%RH", 43, 0],
      ["%RH", 43, 1],
      ["%RH", 42.5, 2],
    ]);
  });

  it("relative humidity in BCD, Weptech Munia (wmbusmeters: 65.7 %RH at 20.1 °C)", () => {
    const r = read("wmbusmeters", "munia_ci78").records;
    expect(r.find((x) => x.quantity === "Relative humidity")).toMatchObject({ unit: "%RH" });
    expect(r.find((x) => x.quantity === "Relative humidity")!.value).toBeCloseTo(65.7, 9);
    expect(r.find((x) => x.quantity === "External temperature")!.value).toBeCloseTo(20.1, 9);
  });

  it("frequency, Gran-System-S (wmbusmeters: 49.98 Hz, 235 V)", () => {
    const r = read("wmbusmeters", "gransystems_ci78").records;
    expect(r.find((x) => x.quantity === "Frequency")).toMatchObject({ unit: "Hz" });
    expect(r.find((x) => x.quantity === "Frequency")!.value).toBeCloseTo(49.98, 9);
    expect(r.find((x) => x.quantity === "Voltage")!.value).toBeCloseTo(235, 9);
    expect(r.some((x) => x.quantity === "Reserved")).toBe(false);
  });
});
