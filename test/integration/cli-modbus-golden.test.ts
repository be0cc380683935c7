/**
 * Issue 16 item 4: what a technician sees. `eclor-edge modbus read` prints the same values as
 * mbpoll (an independent master) for the same registers — float32, int16, int32 and the raw hex
 * view — 64-bit integers exactly, a hint for an address that looks 1-based, and `modbus scan`
 * honours --timeout (a unit answering in 250 ms beside a fast one is found).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModbusSimulator, parseFault, RegisterBank } from "../../sim/modbus/index.js";
import { cli } from "../helpers/run.js";

const sim = new ModbusSimulator();
let port = 0;

/** mbpoll's value lines, `[N]: \tvalue` → `[N]: value` (0-based addresses with -0). */
async function mbpoll(type: string, address: number, count: number): Promise<string> {
  const { stdout } = await promisify(execFile)(
    "mbpoll",
    ["-m", "tcp", "-p", String(port), "-a", "3", "-0", "-r", String(address)].concat([
      "-c",
      String(count),
      "-t",
      type,
      "-B",
      "-1",
      "127.0.0.1",
    ]),
    { timeout: 10_000 },
  );
  return (
    stdout
      .split("\n")
      .filter((l) => /^\[\d+\]:/.test(l))
      // mbpoll adds the signed reading of a 16-bit value ≥ 0x8000: "65534 (-2)".
      .map((l) => l.replace(/:\s+/, ": ").replace(/ \(-\d+\)$/, ""))
      .join("\n")
  );
}

const read = async (...args: string[]) => {
  const r = await cli(["modbus", "read", `127.0.0.1:${port}`, "-u", "3", ...args]);
  expect(r.code).toBe(0);
  return r.stdout.trimEnd();
};

// -4822678189205111 as int64 ABCD, and 2^63 − 1: both need all 64 bits.
const int64 = (v: bigint) =>
  [48n, 32n, 16n, 0n].map((s) => Number((BigInt.asUintN(64, v) >> s) & 0xffffn));

beforeAll(async () => {
  const bank = new RegisterBank();
  bank.map("holding", 0, 64);
  sim.addUnit(3, {}, { bank });
  // float32 3.14159, int16 -2, 0xABCD, and the int32 -2 · 65536 + 0x1DC0.
  [0x4049, 0x0fd0, 0xfffe, 0xabcd, 0xfffe, 0x1dc0].forEach((w, i) => (bank.holding[20 + i] = w));
  [...int64(-4822678189205111n), ...int64(2n ** 63n - 1n)].forEach(
    (w, i) => (bank.holding[40 + i] = w),
  );
  sim.addUnit(4, {}, { bank: new RegisterBank() });
  sim.addUnit(9, {}, { bank: new RegisterBank() });
  sim.setFault(9, parseFault("late:250"));
  port = await sim.listenTcp(0);
});
afterAll(() => sim.close());

describe("modbus read next to mbpoll, same registers", () => {
  it("float32 as mbpoll shows it (3.14159), not the float's exact double", async () => {
    const ours = await read("-a", "20", "-T", "float32");
    expect(ours).toBe("[20]: 3.14159");
    expect(ours).toBe(await mbpoll("4:float", 20, 1));
  });

  it("uint16 and int32 as mbpoll shows them (mbpoll -t 4 is unsigned)", async () => {
    expect(await read("-a", "20", "-n", "6")).toBe(await mbpoll("4", 20, 6));
    expect(await read("-a", "22", "-T", "int16")).toBe("[22]: -2");
    expect(await read("-a", "20", "-n", "3", "-T", "int32")).toBe(await mbpoll("4:int", 20, 3));
  });

  it("--hex is mbpoll's raw register view (-t 4:hex)", async () => {
    const ours = await read("-a", "20", "-n", "3", "-T", "float32", "--hex");
    expect(ours).toBe(await mbpoll("4:hex", 20, 6));
    expect(ours.split("\n")[0]).toBe("[20]: 0x4049");
  });

  it("int64 exactly (mbpoll has no 64-bit type)", async () => {
    expect(await read("-a", "40", "-n", "2", "-T", "int64")).toBe(
      "[40]: -4822678189205111\n[44]: 9223372036854775807",
    );
    expect(await read("-a", "44", "-T", "uint64")).toBe("[44]: 9223372036854775807");
  });

  it("says when an address looks 1-based", async () => {
    const r = await cli(["modbus", "read", `127.0.0.1:${port}`, "-u", "3", "-a", "40021"]);
    expect(r.stderr).toContain(
      "hint: holding address 40021 looks like a 1-based reference (40001 = holding 0); this command takes the 0-based address: -a 20",
    );
  });
});

describe("modbus scan honours --timeout", () => {
  it("finds a unit answering in 250 ms after a fast one, with --timeout 1000", async () => {
    const r = await cli(
      ["modbus", "scan", `127.0.0.1:${port}`, "--from", "3", "--to", "9"].concat([
        "--timeout",
        "1000",
        "--json",
      ]),
    );
    const j = JSON.parse(r.stdout) as { found: { unit: number }[]; timeoutMs: number };
    expect(j.found.map((f) => f.unit)).toEqual([3, 4, 9]);
    expect(j.timeoutMs).toBe(1000);
  }, 30_000);
});
