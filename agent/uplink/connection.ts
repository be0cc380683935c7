/**
 * One MQTT connection to the hypervisor's broker, re-created on every attempt.
 *
 * mqtt.js's own reconnect (fixed `reconnectPeriod`) and its in-memory resend queue are disabled
 * (`reconnectPeriod: 0`, a fresh client per attempt): the store is the resend queue — after a
 * reconnect the drainer resumes from the acknowledged watermark — and the delay is a capped
 * exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"),
 * so a territory of gateways does not reconnect in lockstep after a broker restart.
 * Half-open links are detected by the MQTT keepalive (mqtt.js closes the socket when PINGRESP
 * is late), which then goes through the same reconnect path.
 */
import mqtt, {
  type IClientOptions,
  type IConnackPacket,
  type IPublishPacket,
  type MqttClient,
} from "mqtt";
import type { Logger } from "pino";
import type { UplinkConfig } from "../../config/schema.js";
import { EdgeError } from "../../core/errors.js";
import { describeConnectError, loadTls, type TlsOptions } from "./tls.js";

export interface ConnectionHandlers {
  onConnect(client: MqttClient, connack: IConnackPacket): void;
  onClose(): void;
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void;
}

export interface Will {
  topic: string;
  payload: string;
}

export function backoffDelay(
  attempt: number,
  minMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  // Full jitter, but never below the minimum: a broken broker must not be hammered.
  return Math.max(minMs, Math.round(cap * random()));
}

export class Connection {
  private client?: MqttClient;
  private generation = 0;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private stopped = true;
  private tlsOverride?: UplinkConfig["tls"];
  connected = false;
  lastError?: EdgeError;
  lastConnectTs?: number;
  connectCount = 0;

  constructor(
    private readonly cfg: UplinkConfig,
    private readonly clientId: string,
    private readonly will: () => Will,
    private readonly logger: Logger,
    private readonly handlers: ConnectionHandlers,
  ) {}

  /** Provisioning may replace the TLS settings before (or between) connections. */
  setTls(tls: UplinkConfig["tls"]): void {
    this.tlsOverride = tls;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** The connected client, or undefined. Never cache it: it changes on every reconnect. */
  get current(): MqttClient | undefined {
    return this.connected ? this.client : undefined;
  }

  private options(tls: TlsOptions | undefined): IClientOptions {
    const w = this.will();
    const o: IClientOptions = {
      clientId: this.clientId,
      protocolVersion: this.cfg.protocol_version,
      keepalive: this.cfg.keepalive_s,
      reconnectPeriod: 0,
      connectTimeout: 15_000,
      clean: true,
      will: { topic: w.topic, payload: Buffer.from(w.payload), qos: 1, retain: true },
      // We read topics from the store at our own pace; mqtt.js must not queue while offline.
      queueQoSZero: false,
    };
    if (this.cfg.username !== undefined) o.username = this.cfg.username;
    if (this.cfg.password !== undefined) o.password = this.cfg.password;
    if (tls) Object.assign(o, tls);
    return o;
  }

  private connect(): void {
    if (this.stopped) return;
    const gen = ++this.generation;
    let opts: IClientOptions;
    try {
      opts = this.options(loadTls(this.tlsOverride ?? this.cfg.tls));
    } catch (e) {
      this.report(e as EdgeError);
      this.schedule();
      return;
    }
    this.logger.debug({ url: this.cfg.url, attempt: this.attempt }, "connecting to broker");
    const client = mqtt.connect(this.cfg.url, opts);
    this.client = client;
    client.on("connect", (connack) => {
      if (gen !== this.generation) return;
      this.connected = true;
      this.attempt = 0;
      this.connectCount++;
      this.lastConnectTs = Date.now();
      if (this.lastError) this.logger.info({ url: this.cfg.url }, "connected to broker again");
      else this.logger.info({ url: this.cfg.url }, "connected to broker");
      this.lastError = undefined;
      this.handlers.onConnect(client, connack);
    });
    client.on("message", (topic, payload, packet) => {
      if (gen === this.generation) this.handlers.onMessage(topic, payload, packet);
    });
    client.on("error", (e) => {
      if (gen === this.generation) this.report(describeConnectError(e, this.cfg.url));
    });
    client.on("close", () => {
      if (gen !== this.generation) return;
      this.generation++; // callbacks of this client are stale from now on
      const was = this.connected;
      this.connected = false;
      client.end(true);
      if (was) {
        this.logger.warn(
          { url: this.cfg.url },
          "connection to broker lost; readings stay buffered in the store",
        );
        this.handlers.onClose();
      }
      this.schedule();
    });
  }

  private report(err: EdgeError): void {
    // Log each distinct problem once, not at every retry (a broker down for a week).
    if (this.lastError?.message !== err.message) this.logger.error({ err }, err.message);
    this.lastError = err;
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const delay = backoffDelay(
      this.attempt++,
      this.cfg.reconnect_min_ms,
      this.cfg.reconnect_max_ms,
    );
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
  }

  /** Force a reconnect (e.g. after a refused publish), going through the backoff. */
  drop(reason: string): void {
    this.logger.warn({ reason }, `dropping the broker connection: ${reason}`);
    this.client?.stream?.destroy();
  }

  /**
   * Disconnect cleanly. `last` is published (QoS 1, retained) first when connected — the broker
   * does not send the Last Will after a clean DISCONNECT, so the offline state must be explicit.
   */
  async stop(last?: Will, timeoutMs = 2000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.client;
    this.generation++;
    if (!client) return;
    const wasConnected = this.connected;
    this.connected = false;
    const deadline = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    if (wasConnected && last) {
      await Promise.race([
        client
          .publishAsync(last.topic, last.payload, { qos: 1, retain: true })
          .catch(() => undefined),
        deadline,
      ]);
    }
    await Promise.race([client.endAsync(false).catch(() => undefined), deadline]);
    client.end(true);
    this.handlers.onClose();
  }
}
