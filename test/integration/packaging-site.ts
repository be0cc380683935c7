/**
 * The field and the hypervisor of the package-install test, on the host's loopback (the booted
 * Debian root shares the host's network): a real Mosquitto, the project's Modbus and LoRaWAN
 * simulators run from the repository's dist/, and a subscriber that collects the telemetry.
 * `config()` is config/examples/demo.yaml pointed at them, as the installed agent reads it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { parse, stringify } from "yaml";
import { Mosquitto } from "../helpers/mosquitto.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { repoRoot } from "./packaging-dockerfile.js";

const main = join(repoRoot, "dist/agent/main.js");

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export class SiteRig {
  /** `<device>/<point>` and value of every telemetry record received, in arrival order. */
  readonly records: { n: string; v: unknown }[] = [];
  private readonly procs: ChildProcess[] = [];
  private logs = "";

  private constructor(
    readonly broker: Mosquitto,
    private readonly sub: mqtt.MqttClient,
    readonly modbusPort: number,
    readonly loraPort: number,
  ) {}

  static async start(): Promise<SiteRig> {
    const broker = await Mosquitto.start();
    const modbusPort = await freePort();
    const loraPort = await freeUdpPort();
    const sub = await mqtt.connectAsync(broker.url, {
      clientId: "hypervisor",
      reconnectPeriod: 200,
    });
    const rig = new SiteRig(broker, sub, modbusPort, loraPort);
    sub.on("message", (_topic, payload) => {
      try {
        const body = JSON.parse(payload.toString()) as {
          records?: { n?: string; v?: unknown; vb?: unknown; vs?: unknown }[];
        };
        for (const r of body.records ?? [])
          if (r.n) rig.records.push({ n: r.n, v: r.v ?? r.vb ?? r.vs });
      } catch {
        // not a telemetry payload
      }
    });
    await sub.subscribeAsync("eclor/v1/demo-mairie/telemetry", { qos: 1 });
    rig.spawnSim([
      "sim",
      "modbus",
      "--listen",
      `127.0.0.1:${modbusPort}`,
      "--device",
      "12:eastron-sdm630",
      "--device",
      "3:dali-gateway",
    ]);
    return rig;
  }

  private spawnSim(args: string[]): void {
    const p = spawn(process.execPath, [main, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    p.stdout?.on("data", (d: Buffer) => (this.logs += d.toString()));
    p.stderr?.on("data", (d: Buffer) => (this.logs += d.toString()));
    this.procs.push(p);
  }

  /** The demo's three LoRaWAN sensors (same seed as config/examples/demo.yaml): join, then report. */
  startLorawan(): void {
    this.spawnSim([
      "sim",
      "lorawan",
      "--server",
      `127.0.0.1:${this.loraPort}`,
      "--seed",
      "eclor-demo",
      "--devices",
      "3",
      "--interval",
      "2s",
    ]);
  }

  /** config/examples/demo.yaml for the installed agent, its MQTT password a ${VAR} secret. */
  config(): string {
    const raw = parse(readFileSync(join(repoRoot, "config/examples/demo.yaml"), "utf8")) as {
      uplink: Record<string, unknown>;
      state_dir: string;
      drivers: { driver: string; transport?: { port?: number }; listen?: { port?: number } }[];
    };
    raw.uplink.url = this.broker.url;
    raw.uplink.username = "demo-mairie";
    raw.uplink.password = "${ECLOR_MQTT_PASSWORD}";
    raw.state_dir = "/var/lib/eclor-edge";
    for (const d of raw.drivers) {
      if (d.driver === "modbus" && d.transport) d.transport.port = this.modbusPort;
      if (d.driver === "lorawan") d.listen = { ...d.listen, port: this.loraPort };
    }
    return stringify(raw);
  }

  seen(): number {
    return this.records.length;
  }

  /** Wait for a telemetry record matching `pred`, received after the first `since` records. */
  async waitTelemetry(
    pred: (n: string, v: unknown) => boolean,
    what: string,
    since = 0,
  ): Promise<void> {
    await waitFor(
      () => this.records.slice(since).some((r) => pred(r.n, r.v)),
      3 * 60_000,
      `${what} (got ${[...new Set(this.records.map((r) => r.n))].join(", ") || "nothing"}; simulators: ${this.logs.slice(-500)})`,
    );
  }

  async dispose(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null) {
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        await exited;
      }
    }
    await this.sub.endAsync();
    await this.broker.dispose();
  }
}
