/**
 * The uplink: connection, outbox draining, state/inventory (birth) messages and the command
 * channel. Acquisition never waits on it: it reads the store at its own pace.
 *
 * On every connection: subscribe to `<base>/cmd/#`, publish the retained `state` (online) and
 * retained `inventory`, then drain. The Last Will is the retained `state` offline message.
 */
import type { IConnackPacket, IPublishPacket, MqttClient } from "mqtt";
import type { Logger } from "pino";
import type { UplinkConfig } from "../../config/schema.js";
import type { DeviceInfo } from "../../drivers/driver.js";
import { ErrorCode } from "../../core/errors.js";
import type { Store } from "../store/store.js";
import { Connection } from "./connection.js";
import { type DrainOptions, Drainer } from "./drain.js";
import type { HealthSummary } from "../health/schema.js";
import { PublishGate } from "./gate.js";
import type { InventoryPayload, StatePayload } from "./payloads.js";
import { topicsFor, type Topics } from "./topics.js";

/** A command request as received (handed to the control plane's router). */
export interface CommandMessage {
  /** Command name: the topic after `<base>/cmd/` (may contain `/`, e.g. `config/set`). */
  name: string;
  topic: string;
  payload: Buffer;
  /** MQTT 5 request/response (§4.10): where to answer, and what to echo. */
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
  /** Delivered from the broker's retained store (the control plane refuses those). */
  retain?: boolean;
}

export type CommandHandler = (msg: CommandMessage) => void | Promise<void>;

export interface UplinkIdentity {
  gatewayId: string;
  gateway: InventoryPayload["gateway"];
  version: string;
  configVersion: string;
  startedAt: number;
}

export interface UplinkStatus {
  connected: boolean;
  url: string;
  client_id: string;
  protocol_version: 4 | 5;
  last_connect_ts?: number;
  last_publish_ts?: number;
  last_error?: string;
  connects: number;
  inflight_batches: number;
  published_messages: number;
  published_records: number;
}

/** A batch without PUBACK for two keepalive periods means the broker stopped acknowledging. */
function ackTimeoutOf(cfg: UplinkConfig): number {
  return 2000 * cfg.keepalive_s;
}

export class Uplink {
  // Not readonly: `reconfigure` (remote configuration) replaces the settings and the connection.
  private cfg: UplinkConfig;
  private topicSet: Topics;
  private conn: Connection;
  private readonly drainer: Drainer;
  /** Shared with the drainer, which reads it at each batch and each new connection. */
  private readonly drainOpts: DrainOptions;
  private tlsOverride?: UplinkConfig["tls"];
  private started = false;
  private readonly handlers = new Map<string, CommandHandler>();
  private fallback?: CommandHandler;
  private readonly connectWaiters = new Set<() => void>();
  private health?: () => HealthSummary;
  /** Every publish passes it (broker's Maximum Packet Size, gate.ts). */
  private readonly gate = new PublishGate();

  constructor(
    cfg: UplinkConfig,
    // Not readonly: a configuration applied remotely changes config_version and the gateway facts.
    private id: UplinkIdentity,
    private readonly store: Store,
    private readonly inventory: () => DeviceInfo[],
    private readonly logger: Logger,
  ) {
    this.cfg = cfg;
    this.topicSet = topicsFor(cfg.prefix, id.gatewayId);
    this.drainOpts = {
      batchSize: cfg.batch_size,
      inflight: cfg.inflight,
      topic: (s) => this.topicSet.stream(s),
      ackTimeoutMs: ackTimeoutOf(cfg),
    };
    this.drainer = new Drainer(store, this.drainOpts, this.gate, logger);
    this.drainer.onRefused = (err) => this.conn.drop(`broker refused a publish (${err.message})`);
    this.drainer.onAckTimeout = (reason) => this.conn.drop(reason);
    this.conn = this.newConnection();
  }

  /** The topics in force (they change when `reconfigure` changes `uplink.prefix`). */
  get topics(): Topics {
    return this.topicSet;
  }

  get clientId(): string {
    return this.cfg.client_id ?? this.id.gatewayId;
  }

  get prefix(): string {
    return this.cfg.prefix;
  }

  private newConnection(): Connection {
    const conn = new Connection(
      this.cfg,
      this.clientId,
      () => ({
        topic: this.topicSet.state,
        payload: JSON.stringify(this.statePayload(false, "connection_lost")),
      }),
      this.logger,
      {
        onConnect: (client, connack) => this.onConnect(client, connack),
        onClose: () => this.drainer.detach(),
        onMessage: (topic, payload, packet) => this.onMessage(topic, payload, packet),
      },
    );
    if (this.tlsOverride) conn.setTls(this.tlsOverride);
    return conn;
  }

  /** Provisioning hook: replace TLS settings (effective from the next connection attempt). */
  setTls(tls: UplinkConfig["tls"]): void {
    this.tlsOverride = tls;
    this.conn.setTls(tls);
  }

  start(): void {
    this.started = true;
    this.conn.start();
  }

  /**
   * Switch to new settings (remote configuration, agent/commands/config-apply.ts): the current
   * connection is closed cleanly (offline `state` on the old broker, as on a shutdown), then a
   * connection with the new settings is started; resolves without waiting for the broker
   * (`connected`, `lastError` tell how it goes). Nothing stored is lost: batches in flight stay in
   * the outbox and the drainer resumes from the acknowledged watermark on the new connection.
   * A certificate installed by provisioning (`setTls`) is kept: it belongs to the box.
   */
  async reconfigure(cfg: UplinkConfig): Promise<void> {
    await this.conn.stop({
      topic: this.topicSet.state,
      payload: JSON.stringify(this.statePayload(false, "shutdown")),
    });
    this.cfg = cfg;
    this.topicSet = topicsFor(cfg.prefix, this.id.gatewayId);
    this.drainOpts.batchSize = cfg.batch_size;
    this.drainOpts.inflight = cfg.inflight;
    this.drainOpts.ackTimeoutMs = ackTimeoutOf(cfg);
    this.conn = this.newConnection();
    this.logger.info({ url: cfg.url, client_id: this.clientId }, "uplink reconfigured");
    if (this.started) this.conn.start();
  }

  /** The last connection problem of the current settings, in words (undefined when none). */
  get lastError(): string | undefined {
    return this.conn.lastError?.message;
  }

  get connected(): boolean {
    return this.conn.connected;
  }

  /** Resolves at the next successful connection (immediately if connected). */
  whenConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => this.connectWaiters.add(resolve));
  }

  /** `config_version` of the state message (the status view shows it too). */
  get configVersion(): string {
    return this.id.configVersion;
  }

  /** Where the online `state` takes its health (agent/health/monitor.ts). */
  setHealth(fn: () => HealthSummary): void {
    this.health = fn;
  }

  /**
   * The retained state. When online it carries the health (`status`, `reasons`): published
   * directly, not through the outbox, so a store that cannot be written is still reported
   * (issue 15.3). The offline messages (Last Will, shutdown) carry none: they are written
   * before the fact.
   */
  statePayload(online: boolean, reason?: StatePayload["reason"]): StatePayload {
    return {
      online,
      ...(reason ? { reason } : {}),
      ts: Date.now() / 1000,
      version: this.id.version,
      config_version: this.id.configVersion,
      started_at: new Date(this.id.startedAt).toISOString(),
      ...(online && this.health ? this.health() : {}),
    };
  }

  /** Republish the retained state (the health changed). */
  publishState(): void {
    this.publishRetained(this.topicSet.state, this.statePayload(true));
  }

  inventoryPayload(): InventoryPayload {
    return { ts: Date.now() / 1000, gateway: this.id.gateway, devices: this.inventory() };
  }

  private onConnect(client: MqttClient, connack: IConnackPacket): void {
    const props = connack.properties;
    // Retain As Published (MQTT 5 §3.8.3.1): a live command published with retain keeps its flag,
    // so the control plane refuses it (docs/mqtt-api.md §8.2) — without it the broker clears the
    // flag on live delivery (§3.3.1.3) and the command would run now and at every reconnect.
    // MQTT 3.1.1 has no equivalent: there, only retained commands delivered at subscription are
    // seen as retained (issue 14.5).
    const subOpts =
      this.cfg.protocol_version === 5 ? { qos: 1 as const, rap: true } : { qos: 1 as const };
    client.subscribe(this.topicSet.cmdFilter, subOpts, (err) => {
      if (err)
        this.logger.error(
          { err },
          `cannot subscribe to ${this.topicSet.cmdFilter}: commands will not arrive`,
        );
    });
    this.gate.maxPacket = props?.maximumPacketSize ?? Infinity;
    this.gate.lastRefusal = undefined;
    this.publishRetained(this.topicSet.state, this.statePayload(true));
    this.publishInventory();
    this.drainer.attach(client, props?.receiveMaximum);
    for (const w of this.connectWaiters) w();
    this.connectWaiters.clear();
  }

  private publishRetained(topic: string, body: unknown): void {
    void this.publish(topic, JSON.stringify(body), { qos: 1, retain: true });
  }

  /**
   * The retained inventory; when it does not fit the broker's Maximum Packet Size it is split by
   * devices into parts (docs/mqtt-api.md §6): part 1 on `<base>/inventory`, part i on
   * `<base>/inventory/<i>`, each `{ts, gateway, devices, part, parts}` with the same `ts`.
   * A single device that does not fit alone is left out and reported (last_error, log).
   */
  private publishInventory(): void {
    const inv = this.inventoryPayload();
    const whole = JSON.stringify(inv);
    if (this.gate.fits(this.topicSet.inventory, whole)) {
      void this.publish(this.topicSet.inventory, whole, { qos: 1, retain: true });
      return;
    }
    // The longest part topic, and room for the part/parts fields.
    const room = this.gate.room(this.topicSet.inventoryPart(999)) - 40;
    const frame = Buffer.byteLength(JSON.stringify({ ...inv, devices: [] }));
    const parts: DeviceInfo[][] = [];
    let cur: DeviceInfo[] = [];
    let size = frame;
    for (const d of inv.devices) {
      const n = Buffer.byteLength(JSON.stringify(d)) + 1;
      if (frame + n > room) {
        const err = this.gate.refuse(
          this.topicSet.inventory,
          JSON.stringify(d),
          `device ${d.id} of the inventory`,
        );
        this.logger.error(
          { err, device: d.id },
          `${err.message}; the device is left out of the inventory`,
        );
        continue;
      }
      if (size + n > room && cur.length > 0) {
        parts.push(cur);
        cur = [];
        size = frame;
      }
      cur.push(d);
      size += n;
    }
    if (cur.length > 0 || parts.length === 0) parts.push(cur);
    this.logger.info(
      {
        parts: parts.length,
        bytes: Buffer.byteLength(whole),
        max_packet_size: this.gate.maxPacket,
      },
      `inventory split in ${parts.length} parts to fit the broker's maximum packet size`,
    );
    parts.forEach((devices, i) => {
      const topic = i === 0 ? this.topicSet.inventory : this.topicSet.inventoryPart(i + 1);
      const body = JSON.stringify({ ...inv, devices, part: i + 1, parts: parts.length });
      void this.publish(topic, body, { qos: 1, retain: true });
    });
  }

  /** A new configuration is in force: the next state and inventory messages carry its facts. */
  setIdentity(patch: Partial<Pick<UplinkIdentity, "gateway" | "configVersion">>): void {
    this.id = { ...this.id, ...patch };
  }

  /** Republish state and inventory (the `resync` command, or after the inventory changed). */
  resync(): void {
    this.publishRetained(this.topicSet.state, this.statePayload(true));
    this.publishInventory();
  }

  /**
   * Register the handler of command `name` (`*` = every command without its own handler).
   * Requests arrive on `<base>/cmd/<name>`; answer with `respond`.
   */
  onCommand(name: string, handler: CommandHandler): void {
    if (name === "*") this.fallback = handler;
    else this.handlers.set(name, handler);
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (!topic.startsWith(this.topicSet.cmdPrefix)) return;
    const name = topic.slice(this.topicSet.cmdPrefix.length);
    const p = packet.properties;
    const msg: CommandMessage = { name, topic, payload };
    if (p?.responseTopic) msg.responseTopic = p.responseTopic;
    if (p?.correlationData) msg.correlationData = p.correlationData;
    if (p?.userProperties) msg.userProperties = p.userProperties;
    if (packet.retain) msg.retain = true;
    const handler = this.handlers.get(name) ?? this.fallback;
    if (!handler) {
      // Never silence (issue 7): an error response even before the command router exists.
      let id: unknown;
      try {
        id = (JSON.parse(payload.toString()) as { id?: unknown }).id;
      } catch {
        id = undefined;
      }
      void this.respond(msg, {
        id: typeof id === "string" ? id : null,
        ok: false,
        error: { code: "CommandUnknown", message: `unknown command "${name}"` },
      });
      return;
    }
    Promise.resolve()
      .then(() => handler(msg))
      .catch((err: unknown) =>
        this.logger.error({ err, command: name }, `command handler for ${name} failed`),
      );
  }

  /** Answer a command: MQTT 5 response topic + correlation data when given, else `<base>/res/<name>`. */
  respond(msg: CommandMessage, body: unknown): Promise<boolean> {
    const topic = msg.responseTopic ?? this.topicSet.response(msg.name);
    const properties = msg.correlationData ? { correlationData: msg.correlationData } : undefined;
    let text = JSON.stringify(body);
    if (!this.gate.fits(topic, text, msg.correlationData)) {
      // Refused with an error response that fits, rather than a response the broker would
      // answer by closing the connection.
      const err = this.gate.refuse(topic, text, `the response to ${msg.name}`);
      this.logger.warn({ err, command: msg.name }, err.message);
      const id = (body as { id?: unknown } | null)?.id;
      text = JSON.stringify({
        id: typeof id === "string" ? id : null,
        ok: false,
        error: {
          code: "ResponseTooLarge",
          ecode: ErrorCode.UplinkPacketTooLarge,
          message: `the response is ${PublishGate.packetSize(topic, text, msg.correlationData)} bytes, over the broker's maximum packet size (${this.gate.maxPacket} bytes): ask for less (a smaller limit or range)`,
        },
      });
    }
    return this.publish(topic, text, {
      qos: 1,
      ...(properties ? { properties } : {}),
    });
  }

  /** Bytes of payload that fit on `topic` under the broker's limit (Infinity when none). */
  payloadRoom(topic: string): number {
    return this.gate.room(topic);
  }

  /**
   * Publish now if connected (not through the outbox), through the publish gate. Resolves true on
   * PUBACK, false otherwise (not connected, over the broker's limit, link lost).
   */
  publish(
    topic: string,
    payload: string | Buffer,
    opts: { qos?: 0 | 1; retain?: boolean; properties?: { correlationData?: Buffer } } = {},
  ): Promise<boolean> {
    const client = this.conn.current;
    if (!client) return Promise.resolve(false);
    if (!this.gate.fits(topic, payload, opts.properties?.correlationData)) {
      const err = this.gate.refuse(topic, payload, "a message");
      this.logger.error({ err, topic }, err.message);
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      client.publish(
        topic,
        payload,
        {
          qos: opts.qos ?? 1,
          retain: opts.retain ?? false,
          ...(opts.properties ? { properties: opts.properties } : {}),
        },
        (err) => {
          // A link going down fails every in-flight publish: the connection logs that once.
          if (err && typeof (err as { code?: unknown }).code === "number")
            this.logger.error({ err, topic }, `publishing ${topic} failed`);
          resolve(!err);
        },
      );
    });
  }

  status(): UplinkStatus {
    return {
      connected: this.conn.connected,
      url: this.cfg.url,
      client_id: this.clientId,
      protocol_version: this.cfg.protocol_version,
      ...(this.conn.lastConnectTs ? { last_connect_ts: this.conn.lastConnectTs } : {}),
      ...(this.drainer.lastPublishTs ? { last_publish_ts: this.drainer.lastPublishTs } : {}),
      ...(this.conn.lastError || this.drainer.error || this.gate.lastRefusal
        ? {
            last_error: (this.conn.lastError ?? this.drainer.error ?? this.gate.lastRefusal)!
              .message,
          }
        : {}),
      connects: this.conn.connectCount,
      inflight_batches: this.drainer.inflightBatches,
      published_messages: this.drainer.counters.messages,
      published_records: this.drainer.counters.records,
    };
  }

  /** Publish the offline state, disconnect cleanly. In-flight batches stay in the store. */
  async stop(): Promise<void> {
    this.started = false;
    await this.conn.stop({
      topic: this.topicSet.state,
      payload: JSON.stringify(this.statePayload(false, "shutdown")),
    });
  }
}
