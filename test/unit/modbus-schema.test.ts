/**
 * Config validation of the Modbus block: profiles are resolved at validation time and every
 * problem (missing profile, broken profile file, bad point) is reported with its path.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isEdgeError } from "../../core/errors.js";
import { validateConfigObject } from "../../config/load.js";
import { listProfiles, loadProfile } from "../../drivers/modbus/profiles.js";

const dir = mkdtempSync(join(tmpdir(), "eclor-mbschema-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(devices: unknown[], extra: Record<string, unknown> = {}) {
  return {
    version: 1,
    gateway: { id: "gw" },
    uplink: { url: "mqtt://127.0.0.1:1883" },
    drivers: [
      {
        id: "bus",
        driver: "modbus",
        transport: { type: "tcp", host: "127.0.0.1" },
        devices,
        ...extra,
      },
    ],
  };
}

function problems(raw: unknown): { path: string; message: string }[] {
  try {
    validateConfigObject(raw, "test.yaml", { env: {}, baseDir: dir });
  } catch (e) {
    if (isEdgeError(e))
      return (e.details as { problems: { path: string; message: string }[] }).problems;
    throw e;
  }
  return [];
}

describe("modbus config schema and profiles", () => {
  it("ships valid profiles", () => {
    expect(listProfiles()).toEqual(expect.arrayContaining(["dali-gateway", "eastron-sdm630"]));
    for (const name of listProfiles()) expect(loadProfile(name), name).toMatchObject({ ok: true });
  });

  it("expands a profile into typed points with the device's counts", () => {
    const cfg = validateConfigObject(
      config([
        { id: "meter", unit_id: 12, profile: "eastron-sdm630" },
        {
          id: "dali",
          unit_id: 3,
          profile: "dali-gateway",
          profile_counts: { lamps: 2, groups: 1 },
          points: [{ id: "lamp0_level", table: "holding", address: 0, writable: true }],
        },
      ]),
      "t",
      { env: {}, baseDir: dir },
    );
    const [meter, dali] = cfg.drivers[0]!.devices as unknown as {
      points: { id: string; address: number; type: string; unit?: string; max?: number }[];
      byte_order?: string;
    }[];
    expect(meter!.points).toHaveLength(26);
    expect(meter!.points.find((p) => p.id === "energy_total")).toMatchObject({
      address: 0x156,
      type: "float32",
      unit: "kWh",
    });
    expect(meter!.byte_order).toBe("ABCD");
    expect(dali!.points.map((p) => p.id).sort()).toEqual(
      [
        "broadcast_level",
        "bus_error",
        "bus_power",
        "group0_level",
        "lamps_found",
        "lamp0_gear_failure",
        "lamp0_lamp_failure",
        "lamp0_level",
        "lamp0_on",
        "lamp0_status",
        "lamp1_gear_failure",
        "lamp1_lamp_failure",
        "lamp1_level",
        "lamp1_on",
        "lamp1_status",
      ].sort(),
    );
    expect(dali!.points.find((p) => p.id === "lamp1_status")!.address).toBe(101);
    // The device's own point replaced the profile's (no max any more).
    expect(dali!.points.find((p) => p.id === "lamp0_level")!.max).toBeUndefined();
  });

  it("reports a missing profile and a broken profile file with their paths", () => {
    const broken = join(dir, "broken.yaml");
    writeFileSync(
      broken,
      "points:\n  - { id: x, table: holding, address: 40001x }\n  - { id: y, table: holdin, address: 2 }\n",
    );
    const got = problems(
      config([
        { id: "a", unit_id: 1, profile: "eastron-sdm63" },
        { id: "b", unit_id: 2, profile: broken },
        { id: "c", unit_id: 3, profile: "../etc/passwd" },
        { id: "d", unit_id: 4, profile: "dali-gateway", profile_counts: { lampz: 1 } },
      ]),
    );
    expect(got.map((p) => p.path)).toEqual([
      "drivers[0].devices[0].profile",
      "drivers[0].devices[1].profile",
      "drivers[0].devices[1].profile",
      "drivers[0].devices[2].profile",
      "drivers[0].devices[3].profile",
    ]);
    expect(got[0]!.message).toMatch(
      /profiles\/eastron-sdm63\.yaml does not exist — shipped profiles: .*eastron-sdm630/,
    );
    expect(got[1]!.message).toContain(
      `profile ${broken}: points[0].address: expected integer 0..65535`,
    );
    expect(got[2]!.message).toMatch(/points\[1\]\.table: expected table coil/);
    expect(got[3]!.message).toMatch(/not a profile name/);
    expect(got[4]!.message).toMatch(/no array "lampz" \(arrays: lamps, groups\)/);
  });

  it("refuses ambiguous or impossible points, each with its path", () => {
    const got = problems(
      config([
        {
          id: "plc",
          unit_id: 1,
          points: [
            { id: "a", table: "coil", address: 1, type: "uint16" },
            { id: "b", table: "input", address: 65535, type: "float32", writable: true },
            { id: "c", table: "holding", address: "4x0001" },
            { id: "d", table: "holding", address: 3, type: "string" },
            { id: "e", table: "holding", address: 3, type: "bit" },
            { id: "f", table: "holding", address: 3, scale: 0, min: 5, max: 1 },
            { id: "g", table: "holding", address: 3, unit: "kwh" },
          ],
        },
      ]),
    );
    const byPath = Object.fromEntries(got.map((p) => [p.path, p.message]));
    const base = "drivers[0].devices[0].points";
    expect(byPath[`${base}[0].type`]).toMatch(/a coil holds one bit/);
    expect(byPath[`${base}[1].writable`]).toMatch(/input register is read-only/);
    expect(byPath[`${base}[1].address`]).toMatch(/past the last address 65535/);
    expect(byPath[`${base}[2].address`]).toMatch(
      /0-based register offset, not a 4x\/40001 reference/,
    );
    expect(byPath[`${base}[3].length`]).toMatch(/needs length/);
    expect(byPath[`${base}[4].bit`]).toMatch(/needs bit: 0..15/);
    expect(byPath[`${base}[5].scale`]).toMatch(/scale 0/);
    expect(byPath[`${base}[5].min`]).toMatch(/greater than max/);
    expect(byPath[`${base}[6].unit`]).toMatch(/SenML unit/);
  });

  it("refuses per-device host on serial buses and duplicate points", () => {
    expect(
      problems(
        config([
          {
            id: "x",
            unit_id: 1,
            points: [
              { id: "p", table: "holding", address: 0 },
              { id: "p", table: "holding", address: 1 },
            ],
          },
          { id: "y", unit_id: 2 },
        ]),
      ),
    ).toEqual([
      {
        path: "drivers[0].devices[0].points[1].id",
        message: 'duplicate point id "p" (also points[0])',
      },
    ]);
    const serial = problems(
      config(
        [
          {
            id: "x",
            unit_id: 1,
            host: "10.0.0.1",
            points: [{ id: "p", table: "holding", address: 0 }],
          },
        ],
        { transport: { type: "rtu", path: "/dev/ttyUSB0" } },
      ),
    );
    expect(serial).toEqual([
      {
        path: "drivers[0].devices[0].host",
        message: expect.stringMatching(/only exist on a tcp transport; this bus is rtu/),
      },
    ]);
  });
});

describe("modbus config contradictions (issue 16 item 5)", () => {
  const rtu = (id: string, path: string, extra: Record<string, unknown> = {}) => ({
    id,
    driver: "modbus",
    transport: { type: "rtu", path, ...extra },
    devices: [{ id: `${id}-d`, unit_id: 1, points: [{ id: "p", table: "holding", address: 0 }] }],
  });
  const gw = (drivers: unknown[]) => ({
    version: 1,
    gateway: { id: "gw" },
    uplink: { url: "mqtt://127.0.0.1:1883" },
    drivers,
  });

  it("refuses two drivers on one serial path, naming both line settings", () => {
    expect(
      problems(
        gw([rtu("a", "/dev/ttyS1"), rtu("b", "/dev/ttyS1", { baud: 19200, parity: "even" })]),
      ),
    ).toEqual([
      {
        path: "drivers[1]",
        message:
          'serial line /dev/ttyS1 is set to 19200 8E1 here and to 9600 8N1 by driver "a" (drivers[0]): one line has one setting; put the devices under one driver',
      },
    ]);
    expect(
      problems(
        gw([rtu("a", "/dev/ttyS1"), { id: "m", driver: "mbus", path: "/dev/ttyS1", devices: [] }]),
      ),
    ).toMatchObject([
      { path: "drivers[1]", message: expect.stringMatching(/2400 8E1 here and to 9600 8N1/) },
    ]);
    expect(problems(gw([rtu("a", "/dev/ttyS1"), rtu("b", "/dev/ttyS2")]))).toEqual([]);
  });

  it("refuses an RTU unit id outside 1..247 (0 only as broadcast)", () => {
    const bad = rtu("a", "/dev/ttyS1");
    bad.devices[0]!.unit_id = 248;
    expect(problems(gw([bad]))).toMatchObject([
      {
        path: "drivers[0].devices[0].unit_id",
        message: expect.stringMatching(/^unit 248 is outside 1\.\.247/),
      },
    ]);
    expect(
      problems(
        config([{ id: "d", unit_id: 255, points: [{ id: "p", table: "holding", address: 0 }] }]),
      ),
    ).toEqual([]);
  });

  it("takes max_registers per device, else the profile's (SDM630: 40)", () => {
    const cfg = validateConfigObject(
      config([
        { id: "m", unit_id: 1, profile: "eastron-sdm630" },
        { id: "n", unit_id: 2, profile: "eastron-sdm630", max_registers: 20 },
        {
          id: "o",
          unit_id: 3,
          points: [{ id: "p", table: "holding", address: 0, type: "int64" }],
          max_registers: 4,
        },
      ]),
      "test.yaml",
      { env: {}, baseDir: dir },
    );
    const drv = cfg.drivers[0] as { devices: { max_registers?: number }[] };
    expect(drv.devices.map((d) => d.max_registers)).toEqual([40, 20, 4]);
  });

  it("refuses a point wider than its device's max_registers", () => {
    expect(
      problems(
        config([
          {
            id: "o",
            unit_id: 3,
            max_registers: 2,
            points: [{ id: "p", table: "holding", address: 0, type: "int64" }],
          },
        ]),
      ),
    ).toMatchObject([
      {
        path: "drivers[0].devices[0].points[0].type",
        message: expect.stringMatching(/max_registers is 2/),
      },
    ]);
  });
});
