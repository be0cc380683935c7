/** The TIC config block: the sample validates; bad input is refused with the path and the fix. */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateConfigObject } from "../../config/load.js";
import type { EdgeError } from "../../core/errors.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ctx = { env: { ECLOR_MQTT_PASSWORD: "x" }, baseDir: repoRoot };
const base = { version: 1, gateway: { id: "gw" }, uplink: { url: "mqtt://localhost:1883" } };

function problems(driver: unknown): { path: string; message: string }[] {
  try {
    validateConfigObject({ ...base, drivers: [driver] }, "test", ctx);
  } catch (e) {
    return ((e as EdgeError).details as { problems: { path: string; message: string }[] }).problems;
  }
  return [];
}

describe("TIC config", () => {
  it("accepts drivers/tic/sample.yaml with defaults filled in", () => {
    const cfg = validateConfigObject(
      parse(readFileSync(join(repoRoot, "drivers/tic/sample.yaml"), "utf8")),
      "sample",
      ctx,
    );
    const d = cfg.drivers[0]!;
    expect(d).toMatchObject({
      driver: "tic",
      mode: "auto",
      no_frame_timeout: 10_000,
      reconnect_min: 1000,
    });
  });

  it("refuses bad input with the field and the fix", () => {
    const ok = { id: "t", driver: "tic", path: "/dev/ttyUSB0", devices: [{ id: "m" }] };
    expect(problems(ok)).toEqual([]);
    expect(problems({ ...ok, mode: "fast" })[0]).toMatchObject({
      path: "drivers[0].mode",
      message: expect.stringMatching(/historic \(1200 baud\) or standard \(9600 baud\)/),
    });
    expect(problems({ ...ok, devices: [] })[0]!.message).toMatch(/needs its meter/);
    expect(problems({ ...ok, devices: [{ id: "a" }, { id: "b" }] })[0]!.message).toMatch(
      /exactly one meter/,
    );
    expect(problems({ ...ok, devices: [{ id: "m", meter_id: "1234" }] })[0]).toMatchObject({
      path: "drivers[0].devices[0].meter_id",
      message: expect.stringMatching(/12-digit/),
    });
    expect(
      problems({ ...ok, devices: [{ id: "m", points: [{ id: "p", label: "papp" }] }] })[0]!.message,
    ).toMatch(/upper case/);
    // Closed label sets: a label no mode has is refused at load, not silently never published.
    expect(
      problems({ ...ok, devices: [{ id: "m", points: [{ id: "p", label: "PAP" }] }] })[0],
    ).toMatchObject({
      path: "drivers[0].devices[0].points[0].label",
      message: expect.stringMatching(/"PAP" is not a TIC label.*PAPP/),
    });
    expect(
      problems({ ...ok, devices: [{ id: "m", points: [{ id: "p", label: "SMAXSN-1" }] }] }),
    ).toEqual([]);
    expect(problems({ ...ok, no_frame_timeout: 10 })[0]!.message).toMatch(/duration with a unit/);
    expect(problems({ ...ok, baud: 1200 })[0]!.path).toBe("drivers[0].baud");
  });
});
