/**
 * TIC over a real serial line (socat pty pair): the simulator on one end, the driver on the
 * other. A pty does not simulate baud or parity: the frames arrive as written (see
 * drivers/serial/port.ts), so speed detection is exercised through silence and garbage.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { SerialPort } from "serialport";
import { TicDriver } from "../../drivers/tic/index.js";
import { type TicDriverConfig, ticDriverSchema } from "../../drivers/tic/schema.js";
import { runTicSim } from "../../sim/tic/run.js";
import { FixedPtyPair, recordingContext, waitOr as waitOrState } from "./serial-pty.js";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function config(path: string, over: Record<string, unknown> = {}): TicDriverConfig {
  return ticDriverSchema.parse({
    id: "tic1",
    driver: "tic",
    path,
    reconnect_min: "100ms",
    reconnect_max: "500ms",
    devices: [{ id: "compteur" }],
    ...over,
  });
}

async function pair(): Promise<FixedPtyPair> {
  const p = await FixedPtyPair.open();
  cleanups.push(() => p.close());
  return p;
}

/** What the driver under test looked like, added to any timeout error. */
let state: () => unknown = () => undefined;
const waitOr = <T>(cond: () => T, ms: number, what: string) => waitOrState(cond, ms, what, state);

async function driver(cfg: TicDriverConfig) {
  const rec = await recordingContext();
  const d = new TicDriver(cfg, rec.ctx);
  state = () => ({
    status: d.status(),
    events: rec.events.map((e) => `${e.type}: ${e.message}`),
    readings: rec.readings.length,
  });
  await d.start();
  cleanups.push(() => d.stop());
  return { d, ...rec };
}

describe("TIC driver over a pty", { timeout: 120_000 }, () => {
  it("historic simulator → readings with SenML units, the meter id, growing indexes", async () => {
    const p = await pair();
    const { d, readings, events } = await driver(config(p.b, { mode: "historic" }));
    const sim = runTicSim({
      serial: p.a,
      mode: "historic",
      intervalMs: 100,
      meterId: "021528603314",
    });
    cleanups.push(() => sim.stop());
    await waitOr(
      () =>
        Math.min(...["hchp", "hchc"].map((p) => readings.filter((r) => r.point === p).length)) >= 3,
      30_000,
      "three HCHP readings",
    );
    const by = (pt: string) => readings.filter((r) => r.point === pt);
    expect(by("hchp")[0]).toMatchObject({ device: "compteur", unit: "Wh", quality: "good" });
    expect(by("papp")[0]).toMatchObject({ unit: "VA" });
    expect(by("iinst")[0]).toMatchObject({ unit: "A" });
    expect(by("ptec")[0]!.value).toMatch(/^H[CP]\.\.$/);
    // Only the index of the running tariff period grows (HC from 22:00 to 06:00 Paris time in
    // the simulator), so check the sum of both.
    const total = (i: number) =>
      (by("hchc")[i]!.value as number) + (by("hchp")[i]!.value as number);
    expect(total(2)).toBeGreaterThan(total(0));
    expect(events.find((e) => e.type === "device_online")?.message).toMatch(
      /021528603314 \(historic mode\)/,
    );
    expect(d.status().detail).toMatch(/meter 021528603314 in historic mode/);
    expect(d.status().counters).toMatchObject({ droppedGroups: 0 });
    expect(await d.read("compteur", ["papp"])).toMatchObject([
      { point: "papp", unit: "VA", quality: "good" },
    ]);
  });

  it("standard mode from the CLI simulator, auto mode; corrupted frames lose only their bad group", async () => {
    const p = await pair();
    const { d, readings } = await driver(
      config(p.b, { mode: "auto", devices: [{ id: "linky", meter_id: "041876097467" }] }),
    );
    const cli: ChildProcess = spawn(
      process.execPath,
      [
        "dist/agent/main.js",
        "sim",
        "tic",
        "--serial",
        p.a,
        "--mode",
        "standard",
        "--interval",
        "100ms",
        "--corrupt-every",
        "2",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let simLog = "";
    cli.stderr!.on("data", (b: Buffer) => (simLog += b.toString()));
    const driverState = state;
    state = () => ({ driver: driverState(), simLog });
    cleanups.push(() => void cli.kill("SIGTERM"));
    await waitOr(
      () => readings.filter((r) => r.point === "east").length >= 4,
      30_000,
      "four EAST readings",
    );
    const one = (pt: string) => readings.find((r) => r.point === pt)!;
    expect(one("east")).toMatchObject({ unit: "Wh", quality: "good" });
    expect(one("sinsts")).toMatchObject({ unit: "VA" });
    expect(one("urms1")).toMatchObject({ unit: "V" });
    expect(one("irms1")).toMatchObject({ unit: "A" });
    expect(one("date").value).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00$/);
    expect(one("smaxsn_time").value).toMatch(/\+0[12]:00$/);
    expect(one("ltarf").value).toMatch(/HEURE/);
    expect(d.status().counters!.droppedGroups).toBeGreaterThan(0);
    expect(d.status().devices[0]).toMatchObject({ online: true });
  });

  it("says what to check when no valid frame arrives, and recovers", async () => {
    const p = await pair();
    const { d, events, readings } = await driver(
      config(p.b, { mode: "historic", no_frame_timeout: "1s" }),
    );
    await waitOr(
      () => events.find((e) => e.type === "tic_no_valid_frame"),
      15_000,
      "diagnostic event",
    );
    const ev = events.find((e) => e.type === "tic_no_valid_frame")!;
    expect(ev.message).toMatch(
      /^no valid TIC frame in 1 s at 1200 7E1 — is the meter in standard mode \(9600\)\? \(no bytes received/,
    );
    expect(d.status().detail).toBe(ev.message);
    // Bytes that never form a frame: the message says so.
    const port = new SerialPort({ path: p.a, baudRate: 1200 });
    cleanups.push(() => new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r())));
    await new Promise<void>((r) => port.once("open", () => r()));
    const n = events.length;
    const noise = setInterval(() => port.write(Buffer.from("\x02\nHCHC 000000001 X\r\x03")), 100);
    cleanups.push(() => clearInterval(noise));
    await waitOr(
      () => events.slice(n).find((e) => e.type === "tic_no_valid_frame"),
      15_000,
      "second diagnostic",
    );
    expect(events.slice(n).find((e) => e.type === "tic_no_valid_frame")!.message).toMatch(
      /bytes received, \d+ groups failed their checksum or format/,
    );
    clearInterval(noise);
    const sim = runTicSim({ serial: p.a, mode: "historic", intervalMs: 100 });
    cleanups.push(() => sim.stop());
    await waitOr(() => events.find((e) => e.type === "tic_line_ok"), 15_000, "line ok event");
    expect(readings.length).toBeGreaterThan(0);
    expect(d.status().detail).toMatch(/open at 1200 7E1/);
  });

  it("auto mode switches speed after the timeout and says so", async () => {
    const p = await pair();
    const { d, events } = await driver(config(p.b, { mode: "auto", no_frame_timeout: "1s" }));
    await waitOr(() => d.status().counters!.speedSwitches! >= 1, 15_000, "a speed switch");
    expect(events.find((e) => e.type === "tic_no_valid_frame")!.message).toMatch(
      /at 1200 7E1 — is the meter in standard mode \(9600\)\?/,
    );
    await waitOr(
      () => d.status().counters!.speedSwitches! >= 3,
      15_000,
      "it keeps searching at both speeds",
    );
    // The status says where it searches now; the event is sent once for the cause (issue 17.3).
    expect(d.status().detail).toMatch(/no valid TIC frame in 1 s at (1200|9600) 7E1/);
    expect(events.filter((e) => e.type === "tic_no_valid_frame")).toHaveLength(1);
    expect(events.filter((e) => e.type === "device_offline")).toHaveLength(1);
  });

  it("a port that disappears is retried with backoff and comes back by itself", async () => {
    const p = await pair();
    const { d, readings, events } = await driver(config(p.b, { mode: "historic" }));
    const simLog: string[] = [];
    const sim = runTicSim({
      serial: p.a,
      mode: "historic",
      intervalMs: 100,
      logger: { info: (m) => simLog.push(m), warn: (m) => simLog.push(m) },
    });
    cleanups.push(() => sim.stop());
    const driverState = state;
    state = () => ({ driver: driverState(), sent: sim.sent(), simLog });
    await waitOr(() => readings.length > 10, 30_000, "first readings");
    await p.down();
    await waitOr(
      () => events.find((e) => e.type === "port_unavailable"),
      15_000,
      "port_unavailable event",
    );
    await waitOr(() => /retrying in/.test(d.status().detail ?? ""), 15_000, "waiting state");
    const before = readings.length;
    await new Promise((r) => setTimeout(r, 700)); // a few failed attempts with the port missing
    expect(readings.length).toBe(before);
    await p.up();
    await waitOr(
      () => events.find((e) => e.type === "port_restored"),
      30_000,
      "port_restored event",
    );
    await waitOr(() => readings.length > before + 10, 30_000, "readings after the port came back");
    expect(d.status().counters!.portLosses).toBeGreaterThanOrEqual(1);
  });
});
