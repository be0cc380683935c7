/**
 * The hypervisor side of the command tests (an MQTT 5 client that sends requests with a response
 * topic and correlation data, or without them) and an in-process agent with the control plane on
 * a real config file, store file, broker and Modbus simulator.
 */
import mqtt, { type MqttClient } from "mqtt";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import { pino } from "pino";
import { Agent } from "../../agent/agent.js";
import { ControlPlane, type ControlPlaneOptions } from "../../agent/commands/control-plane.js";
import { responseSchema, type CommandResponse } from "../../agent/commands/schemas.js";
import { resolveStartupConfig } from "../../agent/commands/startup.js";
import { loadConfigFile } from "../../config/load.js";
import { ModbusSimulator } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";

export class Hypervisor {
  private readonly pending = new Map<string, (r: CommandResponse) => void>();
  readonly received: { topic: string; body: unknown }[] = [];
  private constructor(
    readonly client: MqttClient,
    readonly gw: string,
  ) {}

  static async connect(url: string, gw: string): Promise<Hypervisor> {
    const client = mqtt.connect(url, {
      protocolVersion: 5,
      reconnectPeriod: 200,
      clientId: `hv-${randomBytes(4).toString("hex")}`,
    });
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    });
    const hv = new Hypervisor(client, gw);
    client.on("message", (topic, payload, packet) => {
      // The subscription to eclor/v1/<gw>/# also brings our own requests back.
      if (topic.startsWith(`eclor/v1/${gw}/cmd/`)) return;
      const body = JSON.parse(payload.toString()) as unknown;
      hv.received.push({ topic, body });
      const corr = packet.properties?.correlationData?.toString("hex");
      const key = corr ?? `${topic}|${(body as { id?: string }).id}`;
      const done = hv.pending.get(key);
      if (done) {
        hv.pending.delete(key);
        done(responseSchema.parse(body));
      }
    });
    await client.subscribeAsync([`hv/replies/${gw}`, `eclor/v1/${gw}/#`], { qos: 1 });
    return hv;
  }

  /** Send a request; `raw` sends the payload bytes as given. MQTT 5 response topic unless `plain`. */
  request(
    name: string,
    body: unknown,
    opts: {
      plain?: boolean;
      raw?: string | Buffer;
      retain?: boolean;
      timeoutMs?: number;
      /** Resolve the response by this id when the body has none (e.g. a raw payload). */
      id?: string;
    } = {},
  ): Promise<CommandResponse> {
    const corr = randomBytes(8);
    const key = opts.plain
      ? `eclor/v1/${this.gw}/res/${name}|${opts.id ?? (body as { id?: string }).id}`
      : corr.toString("hex");
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`no response to ${name} ${JSON.stringify(body)}`)),
        opts.timeoutMs ?? 20_000,
      );
      this.pending.set(key, (r) => (clearTimeout(t), resolve(r)));
      const payload = opts.raw ?? JSON.stringify(body);
      const properties = opts.plain
        ? {}
        : { responseTopic: `hv/replies/${this.gw}`, correlationData: corr };
      this.client.publish(
        `eclor/v1/${this.gw}/cmd/${name}`,
        payload,
        { qos: 1, retain: opts.retain ?? false, properties },
        (err) => err && reject(err),
      );
    });
  }

  /**
   * Wait until the gateway answers commands: after a (re)start its subscription to cmd/# may not
   * be in place yet when the uplink reports connected, and a request published then is lost.
   * Any response counts (a signing gateway refuses the unsigned ping, but answers).
   */
  async waitReady(timeoutMs = 45_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (let i = 0; Date.now() < end; i++) {
      const r = await this.request(
        "ping",
        { id: `ready-${Date.now()}-${i}` },
        { timeoutMs: 3000 },
      ).catch(() => undefined);
      if (r) return;
    }
    throw new Error(`gateway ${this.gw} does not answer commands`);
  }

  /** Telemetry records received so far (seq → record). */
  telemetry(): Map<number, Record<string, unknown>> {
    const out = new Map<number, Record<string, unknown>>();
    for (const m of this.received) {
      if (m.topic !== `eclor/v1/${this.gw}/telemetry`) continue;
      for (const r of (m.body as { records: Record<string, unknown>[] }).records)
        out.set(r.seq as number, r);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

export interface RunningAgent {
  agent: Agent;
  cp: ControlPlane;
  configPath: string;
  stop(): Promise<void>;
}

/** A state directory and a config file; `start()` runs an agent on them like `eclor-edge run`. */
export class AgentHarness {
  readonly dir = mkdtempSync(join(tmpdir(), "eclor-cmd-it-"));
  readonly configPath = join(this.dir, "config.yaml");
  constructor(config: Record<string, unknown>) {
    this.writeConfig(config);
  }

  writeConfig(config: Record<string, unknown>): void {
    writeFileSync(this.configPath, stringify({ ...config, state_dir: join(this.dir, "state") }));
  }

  /** `extra`: more control-plane options (the lighting tests inject their clock). */
  async start(extra: Partial<ControlPlaneOptions> = {}): Promise<RunningAgent> {
    const logger = pino({ level: process.env.ECLOR_TEST_LOG ?? "silent" });
    const startup = resolveStartupConfig(this.configPath, loadConfigFile(this.configPath), {
      record: true,
      logger,
    });
    const agent = new Agent(startup.config, { configPath: this.configPath, logger });
    await agent.start();
    const cp = ControlPlane.attach(agent, {
      config: startup.config,
      raw: startup.raw,
      configPath: this.configPath,
      fileHash: startup.fileHash,
      logger,
      healthPollMs: 50,
      ...extra,
    });
    await waitFor(() => agent.uplink.connected, 30_000, "agent connected to the broker");
    return {
      agent,
      cp,
      configPath: this.configPath,
      stop: () => {
        cp.close();
        return agent.stop();
      },
    };
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function baseConfig(
  gw: string,
  brokerUrl: string,
  simPort: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    version: 1,
    gateway: { id: gw },
    log: { level: "silent" },
    uplink: { url: brokerUrl, reconnect_min_ms: 100, reconnect_max_ms: 1000 },
    store: { flush_ms: 20 },
    commands: { rollback_window: "8s", rate_limit: { burst: 20, per_minute: 600 } },
    drivers: [
      {
        id: "lighting",
        driver: "modbus",
        transport: { type: "tcp", host: "127.0.0.1", port: simPort },
        poll_interval: "200ms",
        timeout_ms: 200,
        retries: 0,
        devices: [
          {
            id: "dali",
            unit_id: 3,
            profile: "dali-gateway",
            profile_counts: { lamps: 8, groups: 4 },
          },
        ],
      },
    ],
    ...extra,
  };
}

/** A commands test rig: a real broker, a Modbus TCP simulator, the agent, a hypervisor client. */
export interface Rig {
  broker: Mosquitto;
  sim: ModbusSimulator;
  simPort: number;
  harness: AgentHarness;
  /** Replaced when a test restarts the agent (`rig.run = await rig.harness.start()`). */
  run: RunningAgent;
  hv: Hypervisor;
}

/**
 * Start a rig: `units` adds the simulated devices, `config` gives the agent's configuration.
 * Resolves once the gateway answers commands; on failure, what was started is torn down.
 */
export async function startRig(
  gw: string,
  units: (sim: ModbusSimulator) => void,
  config: (brokerUrl: string, simPort: number) => Record<string, unknown>,
): Promise<Rig> {
  const rig: Partial<Rig> = {};
  try {
    rig.broker = await Mosquitto.start();
    rig.sim = new ModbusSimulator();
    units(rig.sim);
    rig.simPort = await rig.sim.listenTcp(0);
    rig.harness = new AgentHarness(config(rig.broker.url, rig.simPort));
    rig.run = await rig.harness.start();
    rig.hv = await Hypervisor.connect(rig.broker.url, gw);
    await rig.hv.waitReady();
    return rig as Rig;
  } catch (e) {
    await disposeRig(rig);
    throw e;
  }
}

/** Tear down a commands test rig in dependency order (client, agent, simulator, broker, files). */
export async function disposeRig(rig: {
  hv?: Hypervisor | undefined;
  run?: RunningAgent | undefined;
  sim?: { close(): Promise<unknown> } | undefined;
  broker?: { dispose(): Promise<unknown> } | undefined;
  harness?: AgentHarness | undefined;
}): Promise<void> {
  await rig.hv?.close();
  await rig.run?.stop();
  await rig.sim?.close();
  await rig.broker?.dispose();
  rig.harness?.dispose();
}
