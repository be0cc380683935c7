/**
 * A real Mosquitto broker for integration tests, on its own free port, that a test can stop and
 * restart (the machine's own broker on 1883 is never used). See ENVIRONMENT.md: no pid_file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports.js";

export interface MosquittoOptions {
  port?: number;
  /** Extra lines appended to the generated config (TLS listeners, ACLs…). */
  extraConfig?: string;
  /** Replace the default listener block entirely (e.g. a TLS-only listener). */
  listenerConfig?: string;
}

export class Mosquitto {
  private proc?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), "eclor-mosq-"));
  log = "";
  private constructor(
    readonly port: number,
    private readonly opts: MosquittoOptions,
  ) {}

  static async start(opts: MosquittoOptions = {}): Promise<Mosquitto> {
    const m = new Mosquitto(opts.port ?? (await freePort()), opts);
    await m.start();
    return m;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const conf = join(this.dir, "mosquitto.conf");
    const listener =
      this.opts.listenerConfig ?? `listener ${this.port} 127.0.0.1\nallow_anonymous true`;
    writeFileSync(
      conf,
      `${listener}\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n${this.opts.extraConfig ?? ""}\n`,
    );
    const proc = spawn("mosquitto", ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    proc.stderr?.on("data", (d: Buffer) => {
      this.log += d.toString();
    });
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          if (proc.exitCode !== null) throw new Error(`mosquitto exited: ${this.log}`);
          const s = connect(this.port, "127.0.0.1");
          s.once("connect", () => (s.destroy(), resolve(true)));
          s.once("error", () => resolve(false));
        }),
      10_000,
      `mosquitto on port ${this.port}`,
    );
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once("exit", () => resolve());
      p.kill("SIGTERM");
      setTimeout(() => p.kill("SIGKILL"), 3000).unref();
    });
    this.proc = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
