/**
 * `eclor-edge tic sniff PORT` over a real serial line (socat pty pair) fed by the TIC meter
 * simulator (sim/tic) in standard mode, and `eclor-edge serial list`. No agent runs here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningSim, runTicSim } from "../../sim/tic/run.js";
import { PtyPair } from "../helpers/socat.js";
import { cli } from "../helpers/run.js";

let pty: PtyPair;
let meter: RunningSim;

beforeAll(async () => {
  pty = await PtyPair.open();
  meter = runTicSim({ serial: pty.b, mode: "standard", intervalMs: 200, meterId: "041876097467" });
});

afterAll(async () => {
  await meter?.stop();
  await pty?.close();
});

describe("tic sniff", () => {
  it("decodes standard-mode frames with units, as JSON Lines", async () => {
    const r = await cli(["tic", "sniff", pty.a, "--mode", "standard", "-n", "2", "--json"]);
    expect(r.code).toBe(0);
    const frames = r.stdout
      .trim()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(l) as {
            mode: string;
            dropped: number;
            groups: { label: string; point?: string; value?: unknown; unit?: string }[];
          },
      );
    expect(frames).toHaveLength(2);
    expect(frames[0]!.mode).toBe("standard");
    expect(frames[0]!.groups.find((g) => g.label === "ADSC")).toMatchObject({
      data: "041876097467",
      point: "adsc",
    });
    expect(frames[0]!.groups.find((g) => g.label === "EAST")).toMatchObject({
      point: "east",
      unit: "Wh",
    });
    expect(typeof frames[0]!.groups.find((g) => g.label === "URMS1")?.value).toBe("number");
  });

  it("human output: one table per frame", async () => {
    const r = await cli(["tic", "sniff", pty.a, "-n", "1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} frame 1 · standard · \d+ group\(s\)\n {2}LABEL +POINT +TIME +VALUE\n/,
    );
    expect(r.stdout).toMatch(/\n {2}EAST +east +\d+ Wh\n/);
  });

  it("a silent line: exit 1 with what to check; bad options: exit 2", async () => {
    const silent = await PtyPair.open();
    try {
      const r = await cli(["tic", "sniff", silent.a, "--mode", "historic", "--timeout", "300"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `error: EE0403 no TIC frame on ${silent.a} within 300 ms in historic mode`,
      );
    } finally {
      await silent.close();
    }
    const bad = await cli(["tic", "sniff", pty.a, "--mode", "fast"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--mode: expected auto, historic or standard, got "fast"');
    const missing = await cli(["tic", "sniff", "/dev/ttyNOPE9"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("cannot open /dev/ttyNOPE9");
  });
});

describe("serial list", () => {
  it("lists ports as JSON (the machine's own; possibly none)", async () => {
    const r = await cli(["serial", "list", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { ports: { path: string }[] };
    expect(Array.isArray(j.ports)).toBe(true);
    for (const p of j.ports) expect(p.path).toMatch(/^\/dev\//);
  });
});
