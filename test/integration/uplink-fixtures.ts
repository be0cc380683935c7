/**
 * Shared pieces of the uplink integration tests: a test double for the *driver* side (the store,
 * the broker and SQLite are real), a config builder, and a hypervisor-side subscriber that
 * validates every payload against the published schemas.
 */
import mqtt, { type MqttClient } from "mqtt";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema, type Config, type ConfigInput } from "../../config/schema.js";
import type {
  DeviceInfo,
  Driver,
  DriverContext,
  DriverStatus,
  Reading,
  WriteResult,
} from "../../drivers/driver.js";
import {
  eventsPayloadSchema,
  statePayloadSchema,
  telemetryPayloadSchema,
} from "../../agent/uplink/payloads.js";
import { waitFor } from "../helpers/ports.js";

/** A driver whose readings the test produces on demand. */
export class TestDriver implements Driver {
  readonly kind = "test";
  private n = 0;
  constructor(
    readonly id: string,
    private readonly ctx: DriverContext,
    readonly device = "meter1",
  ) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  /** Emit `count` readings of point `power` with values n, n+1, … */
  produce(count: number, ts = Date.now()): void {
    const batch: Reading[] = [];
    for (let i = 0; i < count; i++)
      batch.push({
        device: this.device,
        point: "power",
        ts,
        value: this.n++,
        unit: "W",
        quality: "good",
      });
    this.ctx.emit(batch);
  }
  inventory(): DeviceInfo[] {
    return [
      {
        id: this.device,
        driver: this.id,
        kind: this.kind,
        points: [{ id: "power", unit: "W", type: "number", writable: false }],
      },
    ];
  }
  status(): DriverStatus {
    return {
      id: this.id,
      kind: this.kind,
      running: true,
      devices: [{ id: this.device, online: true, errorCount: 0 }],
    };
  }
  async read(): Promise<Reading[]> {
    return [];
  }
  async write(): Promise<WriteResult> {
    return { ok: false, detail: "read-only test driver" };
  }
}

export function testConfig(
  url: string,
  over: Omit<Partial<ConfigInput>, "uplink" | "store"> & {
    store?: ConfigInput["store"];
    uplink?: Partial<ConfigInput["uplink"]>;
  } = {},
): Config {
  const stateDir = mkdtempSync(join(tmpdir(), "eclor-agent-"));
  return configSchema.parse({
    version: 1,
    gateway: { id: "gw-test" },
    state_dir: stateDir,
    log: { level: (process.env.ECLOR_TEST_LOG ?? "silent") as "silent" },
    ...over,
    uplink: { url, reconnect_min_ms: 100, reconnect_max_ms: 1000, ...over.uplink },
    store: { flush_ms: 20, ...over.store },
  });
}

export interface Received {
  telemetry: number[];
  /** seqs per telemetry message, in arrival order */
  messages: number[][];
  events: { seq: number; type: string; data?: Record<string, unknown> }[];
  state: unknown[];
  inventory: unknown[];
  invalid: string[];
  /** Arrival order of every record, e.g. "e:3001", "t:1". */
  order: string[];
  /** Distinct telemetry records by `<epoch>:<seq>`: the dedupe key of docs/mqtt-api.md §7. */
  keys: Set<string>;
}

/** The hypervisor side: subscribes to everything of the gateway and checks every payload. */
export async function hypervisor(
  url: string,
  gw = "gw-test",
  opts: mqtt.IClientOptions = {},
): Promise<{ client: MqttClient; rx: Received }> {
  const rx: Received = {
    telemetry: [],
    messages: [],
    events: [],
    state: [],
    inventory: [],
    invalid: [],
    order: [],
    keys: new Set(),
  };
  // A persistent session (clean: false + session expiry): QoS 1 messages published while this
  // subscriber is reconnecting are queued by the broker, as a real hypervisor would configure it.
  const client = mqtt.connect(url, {
    protocolVersion: 5,
    reconnectPeriod: 200,
    clean: false,
    properties: { sessionExpiryInterval: 600 },
    clientId: `hv-${Math.random().toString(16).slice(2)}`,
    ...opts,
  });
  client.on("message", (topic, payload) => {
    const body = JSON.parse(payload.toString()) as unknown;
    const kind = topic.slice(`eclor/v1/${gw}/`.length);
    if (kind === "telemetry") {
      const p = telemetryPayloadSchema.safeParse(body);
      if (!p.success) rx.invalid.push(`${topic}: ${p.error.message}`);
      else {
        const seqs = p.data.records.map((r) => r.seq);
        rx.messages.push(seqs);
        rx.telemetry.push(...seqs);
        rx.order.push(...seqs.map((q) => `t:${q}`));
        for (const q of seqs) rx.keys.add(`${p.data.epoch}:${q}`);
      }
    } else if (kind === "events") {
      const p = eventsPayloadSchema.safeParse(body);
      if (!p.success) rx.invalid.push(`${topic}: ${p.error.message}`);
      else {
        rx.events.push(
          ...p.data.records.map((r) => ({
            seq: r.seq,
            type: r.type,
            ...(r.data ? { data: r.data } : {}),
          })),
        );
        rx.order.push(...p.data.records.map((r) => `e:${r.seq}`));
      }
    } else if (kind === "state") {
      const p = statePayloadSchema.safeParse(body);
      if (!p.success) rx.invalid.push(`${topic}: ${p.error.message}`);
      rx.state.push(body);
    } else if (kind === "inventory") rx.inventory.push(body);
  });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  await client.subscribeAsync(`eclor/v1/${gw}/#`, { qos: 1 });
  return { client, rx };
}

export async function waitForCount(rx: Received, distinct: number, ms: number): Promise<void> {
  await waitFor(
    () => new Set(rx.telemetry).size >= distinct,
    ms,
    `${distinct} distinct telemetry seqs (have ${new Set(rx.telemetry).size})`,
  );
}
