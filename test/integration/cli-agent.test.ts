/**
 * The technician CLI against the real agent: `eclor-edge run` spawned with a config that polls a
 * simulated SDM630 meter and a DALI gateway (sim/modbus, Modbus TCP) and publishes to a real
 * Mosquitto; each command is the built CLI, spawned. Human output and --json are checked, and
 * the failure paths: unknown device, value out of range, not writable, bus owned by the agent,
 * socket permission denied, agent stopped.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlClient } from "../../agent/control/client.js";
import { ModbusSimulator, addSimDevice } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { cli as runCli, type Run } from "../helpers/run.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const main = join(root, "dist", "agent", "main.js");
const dir = mkdtempSync(join(tmpdir(), "eclor-cli-agent-"));
const sock = join(dir, "run", "control.sock");
const sim = new ModbusSimulator();
let simPort = 0;
let broker: Mosquitto;
let agent: ChildProcess;
let agentLog = "";

function cli(args: string[], opts: { uid?: number } = {}): Promise<Run> {
  return runCli(args, { socket: sock, ...opts });
}

const json = <T = Record<string, unknown>>(r: Run) => JSON.parse(r.stdout) as T;

beforeAll(async () => {
  addSimDevice(sim, 1, "eastron-sdm630");
  addSimDevice(sim, 2, "dali-gateway");
  sim.startTicking(200);
  simPort = await sim.listenTcp(0);
  broker = await Mosquitto.start();
  chmodSync(dir, 0o755);
  const cfg = join(dir, "config.yaml");
  writeFileSync(
    cfg,
    `version: 1
gateway: { id: cli-test-gw, name: Banc CLI }
state_dir: ${join(dir, "state")}
uplink: { url: "${broker.url}" }
control: { socket: ${sock} }
drivers:
  - id: bus1
    driver: modbus
    transport: { type: tcp, host: 127.0.0.1, port: ${simPort} }
    poll_interval: 1s
    devices:
      - { id: compteur, profile: eastron-sdm630, unit_id: 1 }
      - { id: dali, profile: dali-gateway, unit_id: 2, profile_counts: { lamps: 2, groups: 1 } }
`,
  );
  agent = spawn(process.execPath, [main, "run", "--config", cfg], {
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  agent.stdout?.setEncoding("utf8").on("data", (d: string) => (agentLog += d));
  agent.stderr?.setEncoding("utf8").on("data", (d: string) => (agentLog += d));
  // Ready when both devices answered and the uplink is connected.
  await waitFor(
    async () => {
      if (agent.exitCode !== null) throw new Error(`agent exited: ${agentLog}`);
      if (!existsSync(sock)) return false;
      const c = await ControlClient.connect(sock);
      try {
        const s = await c.call<{
          uplink: { connected: boolean };
          drivers: { devices: { online: boolean }[] }[];
        }>("status");
        return s.uplink.connected && s.drivers[0]!.devices.every((d) => d.online);
      } finally {
        c.close();
      }
    },
    20_000,
    "agent up with devices online",
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

describe("against the running agent", () => {
  it("status: uplink connected, store, driver and devices online", async () => {
    const [r, js] = await Promise.all([cli(["status"]), cli(["status", "--json"])]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Gateway  cli-test-gw (Banc CLI)");
    expect(r.stdout).toContain(`Uplink   connected to ${broker.url}`);
    expect(r.stdout).toContain(`Store    ${join(dir, "state", "store.db")}`);
    expect(r.stdout).toContain(`bus1 (modbus) running — connected to 127.0.0.1:${simPort}`);
    expect(r.stdout).toMatch(/compteur\s+online/);
    const j = json<{ uplink: { connected: boolean }; drivers: { devices: { id: string }[] }[] }>(
      js,
    );
    expect(j.uplink.connected).toBe(true);
    expect(j.drivers[0]!.devices.map((d) => d.id)).toEqual(["compteur", "dali"]);
  });

  it("devices: latest values with units; unknown device is bad input", async () => {
    const [r, dj, bad] = await Promise.all([
      cli(["devices", "dali"]),
      cli(["devices", "--json"]),
      cli(["devices", "nope"]),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/lamps_found\s+16 count\s+good/);
    const j = json<{ devices: { id: string; values: { point: string; quality: string }[] }[] }>(dj);
    expect(j.devices.map((d) => d.id)).toEqual(["compteur", "dali"]);
    expect(j.devices[0]!.values.find((v) => v.point === "voltage_l1")?.quality).toBe("good");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'error: EE0406 unknown device "nope" (known: compteur, dali) — see `eclor-edge devices`\n',
    );
  });

  it("read: now, through the driver", async () => {
    const [r, rj, p] = await Promise.all([
      cli(["read", "compteur", "voltage_l1", "frequency"]),
      cli(["read", "compteur", "voltage_l1", "--json"]),
      cli(["read", "compteur", "voltage_l9"]),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/voltage_l1\s+2\d\d(\.\d+)? V\s+good/);
    const j = json<{ ok: boolean; readings: { point: string; unit: string }[] }>(rj);
    expect(j.ok).toBe(true);
    expect(j.readings).toMatchObject([{ point: "voltage_l1", unit: "V", quality: "good" }]);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('device "compteur" has no point "voltage_l9"');
  });

  it("write: through the router, audited as a local technician; refusals write nothing", async () => {
    // Watch the agent's events from here: requests on one connection are handled in order, so
    // once `hello` answers, the tail is subscribed.
    const watcher = await ControlClient.connect(sock);
    const events: { kind: string; event: { type: string; data?: { who?: string } } }[] = [];
    const tail = watcher.stream<(typeof events)[number]>(
      "tail",
      { readings: false, events: true },
      (e) => events.push(e),
    );
    await watcher.call("hello");
    const r = await cli(["write", "dali", "broadcast_level", "40", "--json"]);
    expect(r.code).toBe(0);
    expect(json(r)).toMatchObject({
      ok: true,
      device: "dali",
      point: "broadcast_level",
      value: 40,
      readBack: 40,
    });
    expect(sim.unit(2).bank.holding[300]).toBe(40);
    await waitFor(() => events.some((e) => e.event.type === "command_audit"), 5000, "audit event");
    expect(events.find((e) => e.event.type === "command_audit")).toMatchObject({
      // The technician's uid, from the socket's peer (issue 14.6).
      event: { data: { who: `local:uid=${process.getuid!()}` } },
    });
    await tail.cancel();
    watcher.close();

    const out = await cli(["write", "dali", "broadcast_level", "140"]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/^error: EE0503 .*maximum 100.*nothing was written\n$/);
    const ro = await cli(["write", "dali", "lamps_found", "3", "--json"]);
    expect(ro.code).toBe(2);
    expect(json(ro)).toMatchObject({ ok: false, error: { code: "CommandRefused" } });
    expect(sim.unit(2).bank.holding[300]).toBe(40);
  });

  it("tail: readings of one device as they are stored", async () => {
    const r = await cli(["tail", "--device", "compteur", "--count", "3", "--json"]);
    expect(r.code).toBe(0);
    const items = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; reading: { device: string; seq: number } });
    expect(items).toHaveLength(3);
    for (const i of items)
      expect(i).toMatchObject({ kind: "reading", reading: { device: "compteur" } });
    expect(items[1]!.reading.seq).toBeGreaterThan(items[0]!.reading.seq);
  });

  it("buffer: stats, export, purge of acknowledged history", async () => {
    // The broker acknowledges what the agent publishes: history grows.
    const c = await ControlClient.connect(sock);
    await waitFor(
      async () => (await c.call<{ history: number }>("buffer.stats")).history > 0,
      10_000,
      "history",
    );
    c.close();
    const exportArgs = ["buffer", "export", "--device", "compteur", "--point", "voltage_l1"];
    const [h, e, csv] = await Promise.all([
      cli(["buffer", "stats"]),
      cli(exportArgs),
      cli([
        "buffer",
        "export",
        "--device",
        "dali",
        "--point",
        "broadcast_level",
        "--format",
        "csv",
      ]),
    ]);
    expect(h.stdout).toContain(`store      ${join(dir, "state", "store.db")}`);
    expect(h.stdout).toMatch(/^history +[1-9]\d* \(since /m);
    expect(e.code).toBe(0);
    const parse = (out: string) =>
      out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { seq: number; point: string; unit: string });
    const rows = parse(e.stdout);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((x) => x.point === "voltage_l1" && x.unit === "V")).toBe(true);
    expect(rows.map((x) => x.seq)).toEqual([...rows.map((x) => x.seq)].sort((a, b) => a - b));
    expect(csv.stdout.split("\n")[0]).toBe("seq,ts,time,device,point,value,unit,quality,detail");
    expect(csv.stdout).toMatch(/,dali,broadcast_level,40,%,good,\n/);
    const p = json<{ deleted: number }>(await cli(["buffer", "purge", "--yes", "--json"]));
    expect(p.deleted).toBeGreaterThan(0);
    // The acknowledged rows are gone: what is left starts after the first row exported before.
    const leftOut = (await cli(exportArgs)).stdout.trim();
    const left = leftOut ? parse(leftOut) : [];
    expect(left.every((x) => x.seq > rows[0]!.seq)).toBe(true);
  });

  it("logs: the agent's recent lines", async () => {
    const r = await cli(["logs", "-n", "200", "--json"]);
    expect(r.code).toBe(0);
    const msgs = r.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toContain("control API listening");
    const pretty = await cli(["logs", "-n", "200"]);
    expect(pretty.stdout).toMatch(/INFO: control API listening/);
  });

  it("modbus commands on a bus the agent owns go through the agent", async () => {
    const r = await cli(["modbus", "read", `127.0.0.1:${simPort}`, "-u", "2", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `the agent owns 127.0.0.1:${simPort} (driver "bus1", modbus): reading unit 2 through the agent`,
    );
    expect(json(r)).toMatchObject({ ok: true, via: "agent", devices: [{ device: "dali" }] });
    const w = await cli(["modbus", "write", `127.0.0.1:${simPort}`, "-u", "2", "-a", "300", "90"]);
    expect(w.code).toBe(1);
    expect(w.stderr).toContain("EE0604 the agent owns");
    expect(w.stderr).toContain("use `eclor-edge write DEVICE POINT VALUE`");
    expect(sim.unit(2).bank.holding[300]).toBe(40);
    const s = await cli(["modbus", "scan", `127.0.0.1:${simPort}`]);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/1\s+compteur\s+online/);
  });

  it("modbus read -a N on a bus the agent owns reads the register asked, as its points", async () => {
    const cfg = join(dir, "config.yaml");
    const r = await cli(
      ["modbus", "read", `127.0.0.1:${simPort}`, "-u", "2", "-a", "401"].concat([
        "-t",
        "input",
        "-c",
        cfg,
        "--json",
      ]),
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      "reading input 401 of unit 2 through the agent, as dali/bus_power,bus_error",
    );
    const j = json<{ devices: { device: string; readings: { point: string }[] }[] }>(r);
    expect(j.devices.map((d) => [d.device, d.readings.map((x) => x.point)])).toEqual([
      ["dali", ["bus_power", "bus_error"]],
    ]);
    const none = await cli([
      "modbus",
      "read",
      `127.0.0.1:${simPort}`,
      "-u",
      "2",
      "-a",
      "999",
      "-c",
      cfg,
    ]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("unit 2 has no configured point at holding 999");
  });

  it("--direct is refused while the agent runs", async () => {
    const r = await cli(["read", "compteur", "--direct", "-c", join(dir, "config.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: EE0604 the agent is running (${sock}): drop --direct, it reads through the agent\n`,
    );
  });

  it("socket permission denied gets its own message", async () => {
    if (process.getuid?.() !== 0) return; // covered without root in test/unit/cli-commands.test.ts
    const r = await cli(["status"], { uid: 65534 });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: EE0603 permission denied on the control socket ${sock} — run with sudo, or add your user to the eclor-edge group (sudo usermod -aG eclor-edge $USER) and log in again\n`,
    );
  });

  it("agent stopped: the socket goes away and commands say how to start it", async () => {
    agent.kill("SIGTERM");
    await new Promise((r) => agent.once("exit", r));
    expect(agent.exitCode).toBe(0);
    expect(existsSync(sock)).toBe(false);
    const r = await cli(["devices"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "error: EE0602 the agent is not running — start it with `systemctl start eclor-edge`, or use --direct\n",
    );
    // --direct: the driver built from the config file reads the meter itself — and only the
    // meter: the DALI gateway on the same bus is not polled meanwhile.
    const daliBefore = sim.unit(2).requests;
    const d = await cli([
      "read",
      "compteur",
      "voltage_l1",
      "--direct",
      "-c",
      join(dir, "config.yaml"),
      "--json",
    ]);
    expect(d.code).toBe(0);
    expect(json(d)).toMatchObject({
      ok: true,
      readings: [{ point: "voltage_l1", unit: "V", quality: "good" }],
    });
    const all = await cli(["read", "compteur", "--direct", "-c", join(dir, "config.yaml")]);
    expect(all.code).toBe(0);
    expect(sim.unit(2).requests).toBe(daliBefore);
    const j = await cli(["status", "--json"]);
    expect(j.code).toBe(1);
    expect(json(j)).toMatchObject({ ok: false, error: { code: "AgentNotRunning" } });
  });
});
