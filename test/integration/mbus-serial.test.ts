/**
 * M-Bus over a real serial line (socat pty pair): the CLI meter simulator on one end, the driver
 * on the other. Primary and secondary addressing, multi-telegram reads, a corpus frame replayed,
 * bad frames and silent meters as error readings, and a port that disappears.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { MbusDriver } from "../../drivers/mbus/index.js";
import { type MbusDriverConfig, mbusDriverSchema } from "../../drivers/mbus/schema.js";
import { runMbusSim } from "../../sim/mbus/run.js";
import { waitFor } from "../helpers/ports.js";
import { FixedPtyPair, recordingContext } from "./serial-pty.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const corpusFrame = (n: string, dir = "libmbus") =>
  join(repoRoot, "drivers", "mbus", "testcases", dir, `${n}.hex`);

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function config(
  path: string,
  devices: unknown[],
  over: Record<string, unknown> = {},
): MbusDriverConfig {
  return mbusDriverSchema.parse({
    id: "mbus1",
    driver: "mbus",
    path,
    timeout_ms: 800,
    retries: 1,
    poll_interval: "1s",
    reconnect_min: "100ms",
    reconnect_max: "500ms",
    devices,
    ...over,
  });
}

async function setup(devices: unknown[], simArgs: string[], over: Record<string, unknown> = {}) {
  const p = await FixedPtyPair.open();
  cleanups.push(() => p.close());
  const cli: ChildProcess = spawn(
    process.execPath,
    ["dist/agent/main.js", "sim", "mbus", "--serial", p.a, ...simArgs],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let simLog = "";
  cli.stderr!.on("data", (b: Buffer) => (simLog += b.toString()));
  cleanups.push(() => void cli.kill("SIGTERM"));
  await waitFor(() => /meter at address/.test(simLog), 30_000, "simulator ready");
  const rec = await recordingContext();
  const d = new MbusDriver(config(p.b, devices, over), rec.ctx);
  await d.start();
  cleanups.push(() => d.stop());
  return { p, d, ...rec };
}

describe("M-Bus driver over a pty", { timeout: 120_000 }, () => {
  it("reads meters by primary and secondary address, two telegrams, and a corpus frame", async () => {
    const { d, readings, events } = await setup(
      [
        { id: "heat", address: 1 },
        { id: "water", secondary: "87654321" },
        {
          id: "edc",
          address: 5,
          points: [
            { id: "energy", quantity: "Energy" },
            { id: "flow_temp", quantity: "Flow temperature" },
            { id: "power_max", quantity: "Power", function: "maximum" },
          ],
        },
        { id: "busy", address: 6 },
        { id: "th", address: 7 },
      ],
      [
        "--meter",
        `5=${corpusFrame("EDC")}`,
        // libmbus's CI 70h "application busy" frame and a CI 78h (no header) telegram.
        "--meter",
        `6=${corpusFrame("application_busy", "libmbus-errors")}`,
        "--meter",
        `7=${corpusFrame("lansenth_ci78", "wmbusmeters")}`,
      ],
    );
    await waitFor(
      () =>
        ["heat", "water", "edc", "th"].every((dev) =>
          readings.some((r) => r.device === dev && r.quality === "good"),
        ) && readings.some((r) => r.device === "busy"),
      30_000,
      "good readings from four meters, an exception from the busy one",
    );
    expect(readings.find((r) => r.device === "busy")).toMatchObject({
      quality: "exception",
      detail: expect.stringMatching(/application error: application busy \(CI 70h, code 8\)/),
    });
    expect(
      readings.find((r) => r.device === "th" && r.point === "relative_humidity"),
    ).toMatchObject({ unit: "%RH", value: 43, quality: "good" });
    const one = (dev: string, pt: string) =>
      readings.find((r) => r.device === dev && r.point === pt)!;
    expect(one("heat", "energy")).toMatchObject({ unit: "Wh", quality: "good" });
    expect(one("heat", "energy").value as number).toBeGreaterThanOrEqual(1_234_000);
    expect(one("heat", "volume")).toMatchObject({ unit: "m3" });
    expect(one("heat", "flow_temperature")).toMatchObject({ unit: "Cel", value: 65.2 });
    expect(one("heat", "temperature_difference")).toMatchObject({ unit: "K" });
    expect(one("heat", "time_point_date_time").value).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00$/);
    // Second telegram (after DIF 1Fh): stored values and a tariff.
    expect(one("heat", "energy_s1")).toMatchObject({ unit: "Wh", value: 1_100_000 });
    expect(one("heat", "energy_s1_t1")).toMatchObject({ value: 800_000 });
    expect(one("water", "volume")).toMatchObject({ unit: "m3", quality: "good" });
    expect(one("water", "volume_flow")).toMatchObject({ unit: "m3/h" });
    expect(one("edc", "energy")).toMatchObject({ unit: "Wh", value: 35_000 });
    expect(one("edc", "flow_temp")).toMatchObject({ unit: "Cel" });
    expect(one("edc", "power_max")).toMatchObject({ unit: "W" });
    expect(
      events
        .filter((e) => e.type === "device_online")
        .map((e) => e.device)
        .sort(),
    ).toEqual(["edc", "heat", "th", "water"]);
    const inv = d.inventory().find((x) => x.id === "heat")!;
    expect(inv.points.find((p) => p.id === "energy")).toMatchObject({
      unit: "Wh",
      writable: false,
    });
    expect(
      d
        .status()
        .devices.filter((x) => !x.online)
        .map((x) => x.id),
    ).toEqual(["busy"]);
    const now = await d.read("edc", ["energy"]);
    expect(now).toMatchObject([{ point: "energy", quality: "good", unit: "Wh" }]);
  });

  it("bad frames and silent meters are error readings, not crashes", async () => {
    const { d, readings, events } = await setup(
      [
        { id: "heat", address: 1 },
        { id: "ghost", address: 9, points: [{ id: "volume", quantity: "Volume" }] },
      ],
      ["--corrupt-every", "1"],
    );
    await waitFor(
      () => readings.some((r) => r.device === "heat" && r.quality === "frame_error"),
      30_000,
      "frame_error reading",
    );
    await waitFor(
      () => readings.some((r) => r.device === "ghost" && r.quality === "timeout"),
      30_000,
      "timeout reading",
    );
    expect(readings.find((r) => r.device === "heat")).toMatchObject({
      point: "status",
      value: null,
      quality: "frame_error",
      detail: expect.stringMatching(/checksum/),
    });
    expect(readings.find((r) => r.device === "ghost")).toMatchObject({
      point: "volume",
      value: null,
      detail: expect.stringMatching(/no answer within 800 ms/),
    });
    expect(events.find((e) => e.type === "device_offline" && e.device === "ghost")).toBeDefined();
    expect(d.status().devices.find((x) => x.id === "heat")).toMatchObject({
      online: false,
      lastError: expect.stringMatching(/EE0405/),
    });
    expect(d.status().running).toBe(true);
  });

  it("a port that disappears is retried and the meters are read again", async () => {
    const { p, d, readings, events } = await setup([{ id: "water", address: 2 }], []);
    await waitFor(() => readings.some((r) => r.quality === "good"), 30_000, "first good reading");
    await p.down();
    await waitFor(
      () => events.find((e) => e.type === "port_unavailable"),
      15_000,
      "port_unavailable",
    );
    await waitFor(
      () => readings.some((r) => r.quality === "comm_error"),
      15_000,
      "comm_error reading while the port is missing",
    );
    // The simulator lost its end too: start a new one on the new pair at the same path.
    await p.up();
    const cli = spawn(process.execPath, ["dist/agent/main.js", "sim", "mbus", "--serial", p.a], {
      stdio: "ignore",
    });
    cleanups.push(() => void cli.kill("SIGTERM"));
    const n = readings.length;
    await waitFor(
      () => readings.slice(n).some((r) => r.quality === "good"),
      45_000,
      "good readings after the port came back",
    );
    expect(events.find((e) => e.type === "port_restored")).toBeDefined();
    expect(d.status().counters!.portLosses).toBeGreaterThanOrEqual(1);
  });

  it("`eclor-edge mbus scan` finds the meters by primary and by secondary address", async () => {
    const p = await FixedPtyPair.open();
    cleanups.push(() => p.close());
    // Three meters whose ids start with 1 (12345678, 11120895, 11155185): their ACKs to the
    // masks 1FFFFFFF and 11FFFFFF overlap into one clean E5 on the line.
    const sim = runMbusSim({
      serial: p.a,
      baud: 2400,
      meters: [`12=${corpusFrame("EDC")}`, `13=${corpusFrame("itron_cf_51")}`],
    });
    cleanups.push(() => sim.stop());
    const cli = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(
          process.execPath,
          [
            "dist/agent/main.js",
            "mbus",
            "scan",
            "--serial",
            p.b,
            "--socket",
            join(p.dir, "no-agent.sock"),
            ...args,
          ],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        let out = "";
        let err = "";
        c.stdout.on("data", (b: Buffer) => (out += b.toString()));
        c.stderr.on("data", (b: Buffer) => (err += b.toString()));
        c.on("exit", (code) => resolve({ code, out, err }));
      });
    const prim = await cli(["--to", "13", "--timeout", "400", "--json"]);
    expect(prim.code, prim.err).toBe(0);
    expect((JSON.parse(prim.out) as { meters: unknown[] }).meters).toMatchObject([
      { address: 1, id: "12345678", manufacturer: "ECL" },
      { address: 2, id: "87654321" },
      { address: 12, id: "11120895", manufacturer: "EDC" },
      { address: 13, id: "11155185", manufacturer: "ACW" },
    ]);
    const sec = await cli(["--secondary", "--timeout", "400"]);
    expect(sec.code, sec.err).toBe(0);
    expect(sim.slave.stats.collisions).toBeGreaterThan(0);
    expect(sec.out).not.toMatch(/collision|error/i);
    expect(sec.out).toMatch(/secondary 11120895: EDC 11120895/);
    expect(sec.out).toMatch(/secondary 11155185: ACW 11155185/);
    expect(sec.out).toMatch(/secondary 12345678: ECL 12345678 Heat \(outlet\)/);
    expect(sec.out).toMatch(/secondary 87654321: ECL 87654321 Water/);
    const bad = await cli(["--baud", "2401"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--baud: expected 300, 600/);
  });
});
