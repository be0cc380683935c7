/**
 * `eclor-edge lighting show|override` against a real agent process (`eclor-edge run`) driving the
 * Modbus simulator's DALI gateway: the plan in words and in JSON, an override from the
 * technician and its end, bad input refused with exit 2 — and the agent's own clock check: the
 * time-sync file it is configured with disappears, the lamps go to the safe state with an event.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModbusSimulator, addSimDevice, type SimUnit } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { cli as runCli, type Run } from "../helpers/run.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const main = join(root, "dist", "agent", "main.js");
const dir = mkdtempSync(join(tmpdir(), "eclor-lighting-cli-"));
const sock = join(dir, "control.sock");
const syncFile = join(dir, "synchronized");
const sim = new ModbusSimulator();
let dali: SimUnit;
let broker: Mosquitto;
let agent: ChildProcess;
let agentLog = "";

function cli(args: string[]): Promise<Run> {
  return runCli(args, { socket: sock });
}

beforeAll(async () => {
  dali = addSimDevice(sim, 2, "dali-gateway");
  const port = await sim.listenTcp(0);
  broker = await Mosquitto.start();
  writeFileSync(syncFile, "");
  const cfg = join(dir, "config.yaml");
  // One control at noon: the level is the same whatever the time of day the test runs.
  writeFileSync(
    cfg,
    `version: 1
gateway: { id: light-cli-gw, location: { lat: 49.3579, lon: 6.1683 } }
state_dir: ${join(dir, "state")}
uplink: { url: "${broker.url}" }
control: { socket: ${sock} }
drivers:
  - id: bus1
    driver: modbus
    transport: { type: tcp, host: 127.0.0.1, port: ${port} }
    poll_interval: 500ms
    devices:
      - { id: dali, profile: dali-gateway, unit_id: 2, profile_counts: { lamps: 8, groups: 4 } }
lighting:
  poll: 200ms
  clock: { sync_file: ${syncFile} }
  programs:
    - { id: steady, controls: [{ at: "12:00", level: 55 }] }
  calendars:
    - { id: town, rules: [{ program: steady }] }
  groups:
    - id: main
      calendar: town
      lamps: [{ device: dali, point: group0_level }]
`,
  );
  agent = spawn(process.execPath, [main, "run", "--config", cfg], {
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  agent.stdout?.setEncoding("utf8").on("data", (d: string) => (agentLog += d));
  agent.stderr?.setEncoding("utf8").on("data", (d: string) => (agentLog += d));
  await waitFor(
    () => {
      if (agent.exitCode !== null) throw new Error(`agent exited: ${agentLog}`);
      return dali.bank.holding[0] === 55;
    },
    30_000,
    "the program level written by the agent",
  );
}, 60_000);

afterAll(async () => {
  if (agent && agent.exitCode === null) {
    agent.kill("SIGKILL");
    await new Promise((r) => agent.once("exit", r));
  }
  await broker?.dispose();
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("eclor-edge lighting", () => {
  it("show: tonight's plan per group, in words and in JSON", async () => {
    const [text, js] = await Promise.all([
      cli(["lighting", "show"]),
      cli(["lighting", "show", "--json", "--date", "2026-06-21"]),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /Lighting {2}night of \d{4}-\d\d-\d\d \(Europe\/Paris\) · local file · clock trusted/,
    );
    expect(text.stdout).toMatch(/main {2}now 55 % — program: program "steady"/);
    expect(text.stdout).toMatch(/12:00\s+55 %\s+-\s+program "steady"/);
    expect(js.code, js.stderr).toBe(0);
    const v = JSON.parse(js.stdout) as {
      night: string;
      sun: { sunset: number };
      groups: { plan: { local: string }[] }[];
    };
    expect(v.night).toBe("2026-06-21");
    // Sunset on 21 June 2026 at Thionville: 19:45 UTC (NOAA table, agent/lighting/testcases).
    expect(Math.abs(v.sun.sunset - Date.parse("2026-06-21T19:45:38Z"))).toBeLessThan(60_000);
    expect(v.groups[0]!.plan.map((e) => e.local)).toEqual(["12:00"]);
  });

  it("override GROUP LEVEL --for: the lamps follow, show names it; without LEVEL it ends", async () => {
    const r = await cli(["lighting", "override", "main", "30", "--for", "2h", "--reason", "test"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("main: override at 30 % (lamps at 30 %)\n");
    expect(dali.bank.holding[0]).toBe(30);
    const show = await cli(["lighting", "show"]);
    expect(show.stdout).toMatch(/override 30 % by local \(test\) until \d\d:\d\d/);
    const end = await cli(["lighting", "override", "main"]);
    expect(end.stdout).toBe("main: override ended, the program applies (lamps at 55 %)\n");
    expect(dali.bank.holding[0]).toBe(55);
  });

  it("refuses bad input with exit 2 and changes nothing", async () => {
    const runs = await Promise.all([
      cli(["lighting", "override", "main", "30"]),
      cli(["lighting", "override", "main", "130", "--for", "1h"]),
      cli(["lighting", "override", "nope", "10", "--for", "1h"]),
      cli(["lighting", "override", "main", "10", "--for", "8d"]),
      cli(["lighting", "show", "--date", "2026-13-01"]),
    ]);
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(runs[0].stderr).toMatch(/needs an end: --for 2h or --until-next-event/);
    expect(runs[1].stderr).toMatch(/LEVEL: expected an integer 0\.\.100/);
    expect(runs[2].stderr).toMatch(/unknown lighting group "nope" \(groups: main\)/);
    expect(runs[3].stderr).toMatch(/for: at most 7d/);
    expect(runs[4].stderr).toMatch(/not a calendar date/);
    expect(dali.bank.holding[0]).toBe(55);
  });

  it("falls to the safe state when the clock is no longer known to be synchronised", async () => {
    unlinkSync(syncFile);
    // Without the file the agent asks timedatectl; where it answers "yes" the clock stays trusted.
    const timedatectl = await new Promise<string>((resolve) => {
      const c = spawn("timedatectl", ["show", "-p", "NTPSynchronized", "--value"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      let out = "";
      c.stdout.on("data", (d: Buffer) => (out += d.toString()));
      c.on("error", () => resolve(""));
      c.on("close", () => resolve(out.trim()));
    });
    if (timedatectl === "yes") return;
    await waitFor(() => dali.bank.holding[0] === 100, 10_000, "the safe level");
    const show = await cli(["lighting", "show"]);
    expect(show.stdout).toMatch(/clock NOT TRUSTED/);
    expect(show.stdout).toMatch(/main {2}now 100 % — safe: safe state, clock not trusted/);
    writeFileSync(syncFile, "");
    await waitFor(() => dali.bank.holding[0] === 55, 10_000, "the program again");
  });
});
