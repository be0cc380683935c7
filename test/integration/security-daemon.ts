/**
 * The security tests' rig (issue 14): the real daemon (`eclor-edge run`, built CLI) on a config
 * file and state directory of its own, a hypervisor client, and the store opened read-only to
 * check what the agent recorded (audit rows, configuration versions).
 */
import Database from "better-sqlite3";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Socket, connect } from "node:net";
import { stringify } from "yaml";
import { waitFor } from "../helpers/ports.js";
import { ModbusSimulator, addSimDevice } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import {
  baseConfig,
  Hypervisor as HypervisorClient,
  type Hypervisor,
} from "./commands-fixtures.js";

export const cli = resolve(import.meta.dirname, "../../dist/agent/main.js");

export class Daemon {
  readonly dir = mkdtempSync(join(tmpdir(), "eclor-sec-"));
  readonly configPath = join(this.dir, "config.yaml");
  readonly stateDir = join(this.dir, "state");
  readonly socket = join(this.dir, "run", "control.sock");
  proc: ChildProcess | undefined;
  log = "";

  constructor(
    readonly gw: string,
    config: Record<string, unknown>,
  ) {
    this.writeConfig(config);
  }

  writeConfig(config: Record<string, unknown>): void {
    writeFileSync(
      this.configPath,
      stringify({ ...config, state_dir: this.stateDir, control: { socket: this.socket } }),
    );
  }

  /** Spawn `eclor-edge run` and wait until it answers commands. */
  async start(hv: Hypervisor, env: NodeJS.ProcessEnv = {}): Promise<void> {
    const mark = hv.received.length;
    const p = spawn(process.execPath, [cli, "run", "--config", this.configPath], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    this.proc = p;
    p.stdout?.on("data", (d: Buffer) => (this.log += d.toString()));
    p.stderr?.on("data", (d: Buffer) => (this.log += d.toString()));
    await waitFor(
      () => {
        if (p.exitCode !== null) throw new Error(`the daemon exited: ${this.log.slice(-2000)}`);
        return hv.received
          .slice(mark)
          .some(
            (m) =>
              m.topic === `eclor/v1/${this.gw}/state` &&
              (m.body as { online?: boolean }).online === true,
          );
      },
      45_000,
      "the daemon online",
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}; daemon log: ${this.log.slice(-2000)}`);
    });
    await hv.waitReady();
  }

  /** Query the daemon's store (read-only, beside the running agent: WAL readers do not block). */
  query<T>(sql: string, ...args: unknown[]): T[] {
    const db = new Database(join(this.stateDir, "store.db"), { readonly: true });
    try {
      return db.prepare(sql).all(...args) as T[];
    } finally {
      db.close();
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once("exit", () => r());
      p.kill("SIGTERM");
      setTimeout(() => p.kill("SIGKILL"), 10_000).unref();
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A raw control-socket connection collecting the answer lines. */
export function open(path: string): Promise<{
  sock: Socket;
  lines: Record<string, unknown>[];
  closed: () => boolean;
}> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const lines: Record<string, unknown>[] = [];
    let buf = "";
    let closed = false;
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
      }
    });
    sock.on("close", () => (closed = true));
    sock.once("error", reject);
    sock.once("connect", () => resolve({ sock, lines, closed: () => closed }));
  });
}

/** The daemon polling a simulated DALI gateway (unit 3), a real Mosquitto and a hypervisor. */
export interface SecurityRig {
  broker: Mosquitto;
  sim: ModbusSimulator;
  hv: Hypervisor;
  daemon: Daemon;
  dispose(): Promise<void>;
}

export async function startSecurityRig(gw: string): Promise<SecurityRig> {
  const broker = await Mosquitto.start();
  const sim = new ModbusSimulator();
  addSimDevice(sim, 3, "dali-gateway");
  const port = await sim.listenTcp(0);
  const daemon = new Daemon(gw, baseConfig(gw, broker.url, port));
  const hv = await HypervisorClient.connect(broker.url, gw);
  await daemon.start(hv);
  return {
    broker,
    sim,
    hv,
    daemon,
    async dispose() {
      await hv.close();
      await daemon.dispose();
      await sim.close();
      await broker.dispose();
    },
  };
}
