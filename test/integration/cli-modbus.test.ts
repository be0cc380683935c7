/**
 * Direct commissioning with `eclor-edge modbus read|write|scan`, the agent not running:
 * - scan over a real serial line (socat pty pair, sim/modbus RTU slave on the other end) finds
 *   exactly the simulated unit ids; piped, it prints result lines only (no progress bar); on a
 *   terminal (run under `script`, a real pty) it draws a progress bar with an ETA and the
 *   measured per-address timeout;
 * - read/write of typed values with word orders, cross-checked with mbpoll (an independent
 *   Modbus master) over TCP.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModbusSimulator, RegisterBank } from "../../sim/modbus/index.js";
import { PtyPair } from "../helpers/socat.js";
import { run as runProcess, type Run } from "../helpers/run.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const main = join(root, "dist", "agent", "main.js");
const UNITS = [3, 7, 12];
const sim = new ModbusSimulator();
let pty: PtyPair;
let tcpPort = 0;

function run(cmd: string, args: string[]): Promise<Run> {
  // No agent runs in this test: point the socket somewhere empty so a box's real agent is not asked.
  return runProcess(cmd, args, {
    env: { ...process.env, NO_COLOR: "1", ECLOR_EDGE_SOCKET: "/nonexistent/control.sock" },
  });
}
const cli = (args: string[]) => run(process.execPath, [main, ...args]);
/** `modbus scan` of units 1..`to` on the serial line. */
const scanArgs = (to: number) => [
  "modbus",
  "scan",
  pty.a,
  "--from",
  "1",
  "--to",
  String(to),
  "--timeout",
  "300",
  // A high floor keeps the measured timeout above a loaded CI machine's answer times.
  "--min-timeout",
  "250",
];

beforeAll(async () => {
  for (const u of UNITS) {
    const bank = new RegisterBank();
    bank.map("holding", 0, 32);
    sim.addUnit(u, {}, { bank });
  }
  pty = await PtyPair.open();
  await sim.openSerial(pty.b, 9600);
  tcpPort = await sim.listenTcp(0);
});

afterAll(async () => {
  await sim.close();
  await pty?.close();
});

describe("modbus scan over a serial line", () => {
  it("piped: finds exactly the simulated units, result lines only, no progress bar", async () => {
    const r = await cli(scanArgs(15));
    expect(r.code).toBe(0);
    for (const s of ["\r", "\u001b", "ETA", "[#"]) expect(r.stdout).not.toContain(s);
    const found = [...r.stdout.matchAll(/^found unit (\d+): holding 0 = 0 in [\d.]+ ms$/gm)].map(
      (m) => Number(m[1]),
    );
    expect(found).toEqual(UNITS);
    expect(r.stdout).toMatch(
      /^found 3 unit\(s\): 3, 7, 12 \(scanned 15 of 15 in .*, timeout \d+ ms measured\)$/m,
    );
  });

  it("--json lists the units with their measured answer times", async () => {
    const r = await cli([...scanArgs(13), "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      ok: boolean;
      found: { unit: number; rttMs: number }[];
      scanned: number;
      timeoutMs: number;
    };
    expect(j.ok).toBe(true);
    expect(j.scanned).toBe(13);
    expect(j.found.map((f) => f.unit)).toEqual(UNITS);
    expect(j.timeoutMs).toBeLessThanOrEqual(300);
  });

  it("on a terminal: progress bar, ETA and the measured timeout", async () => {
    // `script` runs the command on a real pty, so stdout.isTTY is true in the CLI.
    const cmd = `NO_COLOR=1 ECLOR_EDGE_SOCKET=/nonexistent.sock ${process.execPath} ${main} ${scanArgs(8).join(" ")}`;
    const r = await run("script", ["-qfec", cmd, "/dev/null"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("\r\u001b[2K[");
    expect(r.stdout).toMatch(/\] \d+\/8 \d+% · ETA [^·]+ · timeout 300 ms · found 0/);
    expect(r.stdout).toMatch(
      /\] \d+\/8 \d+% · ETA [^·]+ · timeout \d+ ms \(measured\) · found [12]/,
    );
    expect(r.stdout).toMatch(/found 2 unit\(s\): 3, 7/);
  });

  it("nothing answers: exit 1 and says so", async () => {
    const r = await cli([
      "modbus",
      "scan",
      pty.a,
      "--from",
      "20",
      "--to",
      "21",
      "--timeout",
      "100",
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/no unit answered \(scanned 2 of 2/);
  });
});

describe("modbus read and write", () => {
  it("writes a float32 word-swapped over RTU and reads it back", async () => {
    const w = await cli([
      "modbus",
      "write",
      pty.a,
      "-u",
      "7",
      "-a",
      "4",
      "-T",
      "float32",
      "-o",
      "CDAB",
      "230.5",
      "-1.25",
    ]);
    expect(w.code).toBe(0);
    expect(w.stdout).toBe("ok wrote 2 value(s) to unit 7 holding 4 (FC16)\n");
    // 230.5 = 0x43668000: CDAB puts the low word first.
    expect([...sim.unit(7).bank.holding.slice(4, 8)]).toEqual([0x8000, 0x4366, 0x0000, 0xbfa0]);
    const r = await cli([
      "modbus",
      "read",
      pty.a,
      "-u",
      "7",
      "-a",
      "4",
      "-n",
      "2",
      "-T",
      "float32",
      "-o",
      "CDAB",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("[4]: 230.5\n[6]: -1.25\n");
  });

  it("agrees with mbpoll on a TCP float32 (independent master)", async () => {
    const w = await cli([
      "modbus",
      "write",
      `127.0.0.1:${tcpPort}`,
      "-u",
      "3",
      "-a",
      "10",
      "-T",
      "float32",
      "21.75",
    ]);
    expect(w.code).toBe(0);
    // mbpoll: 1-based reference (-r 11 = address 10), -t 4:float big-endian by default.
    const m = await promisify(execFile)("mbpoll", [
      "-m",
      "tcp",
      "-p",
      String(tcpPort),
      "-a",
      "3",
      "-r",
      "11",
      "-c",
      "1",
      "-t",
      "4:float",
      "-B",
      "-1",
      "127.0.0.1",
    ]);
    expect(m.stdout).toMatch(/\[11\]:\s+21\.75/);
  });

  it("polls every N ms, with --json one object per poll", async () => {
    const r = await cli([
      "modbus",
      "read",
      `127.0.0.1:${tcpPort}`,
      "-u",
      "12",
      "-n",
      "3",
      "--every",
      "50",
      "--times",
      "3",
      "--json",
    ]);
    expect(r.code).toBe(0);
    const polls = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { ok: boolean; values: { address: number; value: number }[] });
    expect(polls).toHaveLength(3);
    expect(polls[2]).toMatchObject({
      ok: true,
      values: [{ address: 0 }, { address: 1 }, { address: 2 }],
    });
  });

  it("a silent unit: exit 1 with the reason; bad arguments: exit 2 naming the option", async () => {
    const r = await cli(["modbus", "read", pty.a, "-u", "9", "--timeout", "100"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: EE0403 no answer from unit 9 on ${pty.a} (9600 baud, none, 81) within 100 ms — check the unit id, wiring, baud rate and parity\n`,
    );
    const bad = await Promise.all([
      cli(["modbus", "read", pty.a, "-t", "holdings"]),
      cli(["modbus", "read", pty.a, "-T", "float16"]),
      cli(["modbus", "read", pty.a, "-a", "70000"]),
      cli(["modbus", "write", `127.0.0.1:${tcpPort}`, "-T", "int16", "40000"]),
      cli(["modbus", "write", `127.0.0.1:${tcpPort}`, "-t", "input", "1"]),
    ]);
    expect(bad.map((b) => b.code)).toEqual([2, 2, 2, 2, 2]);
    expect(bad[0].stderr).toContain("--table: expected coil, discrete_input, input or holding");
    expect(bad[1].stderr).toContain("--type: expected");
    expect(bad[2].stderr).toContain('--address: expected an integer 0..65535, got "70000"');
    expect(bad[3].stderr).toContain("VALUE: 40000 is outside the int16 range -32768..32767");
    expect(bad[4].stderr).toContain("--table: input is read-only");
  });
});
