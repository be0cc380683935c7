/** The M-Bus config block: the sample validates; bad input is refused with the path and the fix. */
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

describe("M-Bus config", () => {
  it("accepts drivers/mbus/sample.yaml with defaults filled in", () => {
    const cfg = validateConfigObject(
      parse(readFileSync(join(repoRoot, "drivers/mbus/sample.yaml"), "utf8")),
      "sample",
      ctx,
    );
    const d = cfg.drivers[0]!;
    expect(d).toMatchObject({ driver: "mbus", baud: 2400, poll_interval: 900_000 });
    if (d.driver !== "mbus") throw new Error("expected mbus");
    expect(d.devices[1]!.points[1]).toMatchObject({
      quantity: "Volume",
      storage: 1,
      tariff: 0,
      function: "instantaneous",
    });
  });

  it("refuses bad input with the field and the fix", () => {
    const ok = {
      id: "m",
      driver: "mbus",
      path: "/dev/ttyUSB0",
      devices: [{ id: "a", address: 1 }],
    };
    expect(problems(ok)).toEqual([]);
    expect(problems({ ...ok, baud: 2401 })[0]).toMatchObject({
      path: "drivers[0].baud",
      message: expect.stringMatching(/300, 600, 1200, 2400/),
    });
    expect(problems({ ...ok, devices: [{ id: "a" }] })[0]!.message).toMatch(
      /exactly one of `address`/,
    );
    expect(
      problems({ ...ok, devices: [{ id: "a", address: 1, secondary: "12345678" }] })[0]!.message,
    ).toMatch(/exactly one of/);
    expect(problems({ ...ok, devices: [{ id: "a", address: 251 }] })[0]).toMatchObject({
      path: "drivers[0].devices[0].address",
      message: expect.stringMatching(/^expected integer 0..250/),
    });
    expect(problems({ ...ok, devices: [{ id: "a", secondary: "1234" }] })[0]!.message).toMatch(
      /8-digit identification number/,
    );
    expect(
      problems({ ...ok, devices: [{ id: "a", address: 1, points: [{ id: "p" }] }] })[0]!.message,
    ).toMatch(/`record`.*or `quantity`/);
    expect(
      problems({
        ...ok,
        devices: [
          { id: "a", address: 1, points: [{ id: "p", quantity: "Energy", function: "avg" }] },
        ],
      })[0]!.path,
    ).toBe("drivers[0].devices[0].points[0].function");
  });
});
