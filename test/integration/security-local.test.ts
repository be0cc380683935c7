/**
 * Issue 14.7, local state, against the real daemon and CLI: state files 0600 and the socket's
 * directory 0750 under a permissive umask; a second agent on the same state directory exits 1
 * with a plain message (and the first keeps running); `eclor-edge modbus write` cannot bypass the
 * agent's bus ownership with `127.1` or `[::ffff:127.0.0.1]`; a YAML alias bomb in a bundle is
 * EE0701, exit 2.
 */
import { spawn, spawnSync } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModbusSimulator, addSimDevice } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { Hypervisor, baseConfig } from "./commands-fixtures.js";
import { Daemon, cli } from "./security-daemon.js";

const GW = "gw-sec-local";
let broker: Mosquitto;
let sim: ModbusSimulator;
let simPort: number;
let hv: Hypervisor;
let daemon: Daemon;
const mode = (p: string) => statSync(p).mode & 0o777;

beforeAll(async () => {
  broker = await Mosquitto.start();
  sim = new ModbusSimulator();
  addSimDevice(sim, 3, "dali-gateway");
  simPort = await sim.listenTcp(0);
  daemon = new Daemon(GW, baseConfig(GW, broker.url, simPort));
  hv = await Hypervisor.connect(broker.url, GW);
  // Outside the systemd unit, with a permissive umask.
  const old = process.umask(0);
  try {
    await daemon.start(hv);
  } finally {
    process.umask(old);
  }
}, 90_000);

afterAll(async () => {
  await hv?.close();
  await daemon?.dispose();
  await sim?.close();
  await broker?.dispose();
});

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("local state (issue 14.7)", () => {
  it("creates the store 0600 and the socket directory 0750 whatever the umask", () => {
    const db = join(daemon.stateDir, "store.db");
    expect(mode(db)).toBe(0o600);
    expect(mode(`${db}-wal`)).toBe(0o600);
    expect(mode(daemon.stateDir)).toBe(0o750);
    expect(mode(dirname(daemon.socket))).toBe(0o750);
    expect(mode(daemon.socket)).toBe(0o660);
  });

  it("refuses a second agent on the same state directory: exit 1, plain message", async () => {
    const second = spawn(process.execPath, [cli, "run", "--config", daemon.configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    second.stdout.on("data", (d: Buffer) => (out += d.toString()));
    second.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => second.once("exit", r));
    expect(code).toBe(1);
    expect(out).toContain(
      `another eclor-edge agent (pid ${daemon.proc!.pid}) is running on the state directory`,
    );
    // The first one still answers.
    expect((await hv.request("ping", { id: "still-here" })).ok).toBe(true);
  }, 60_000);

  it.each([`127.1:${0}`, `[::ffff:127.0.0.1]:${0}`, `0.0.0.0:${0}`])(
    "modbus write %s is refused while the agent owns the bus",
    (spec) => {
      const ep = spec.replace(/:0$/, `:${simPort}`);
      const before = sim.unit(3).functions.get(6) ?? 0;
      const w = run(["modbus", "write", ep, "-u", "3", "-a", "5", "90", "--socket", daemon.socket]);
      expect(w.code).toBe(1);
      expect(w.stderr).toContain("EE0604 the agent owns");
      expect(sim.unit(3).functions.get(6) ?? 0).toBe(before);
    },
    30_000,
  );

  it("refuses a YAML alias bomb in a bundle: EE0701, exit 2", () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 8; i++) {
      const prev = String.fromCharCode(97 + i);
      const cur = String.fromCharCode(98 + i);
      lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(",")}]`);
    }
    const bomb = join(daemon.dir, "bomb.yaml");
    writeFileSync(bomb, `${lines.join("\n")}\n`);
    const r = run(["provision", "--bundle", bomb, "--check"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("EE0701");
    expect(r.stderr).toMatch(/needs no YAML aliases/);
  });
});
