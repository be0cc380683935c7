/**
 * MQTT side of the commands: requests arrive on `<prefix>/<gw>/cmd/<name>` (name may have two
 * levels: `config/get`), responses go to the request's MQTT 5 response topic with its
 * correlation data when it has one, else to `<prefix>/<gw>/res/<name>`. Every message gets a
 * response — malformed JSON, unknown command, retained message included — and nothing here
 * throws into the MQTT client.
 *
 * Responses are QoS 1, not retained. If the response cannot be published (uplink down), the
 * hypervisor repeats the request with the same id and gets the journaled result: writes are
 * never executed twice.
 */
import type { Logger } from "pino";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { failure } from "./outcome.js";
import type { CommandResponse } from "./schemas.js";
import type { CommandService } from "./service.js";

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Largest request accepted (a whole configuration fits easily). */
export const MAX_REQUEST_BYTES = 256 * 1024;

export interface InboundMessage {
  topic: string;
  payload: Buffer;
  retain?: boolean;
  /** MQTT 5 properties of the request. */
  responseTopic?: string | undefined;
  correlationData?: Buffer | undefined;
}

export interface ResponsePublisher {
  /** Publish QoS 1, not retained; `correlationData` as the MQTT 5 property when given. */
  publish(topic: string, payload: string, correlationData?: Buffer, qos?: 0 | 1): Promise<void>;
}

export interface DispatcherOptions {
  /** A function when the prefix can change at run time (remote configuration of the uplink). */
  prefix: string | (() => string);
  gatewayId: string;
  service: CommandService;
  publisher: ResponsePublisher;
  logger: Logger;
  /** Commands of one kind handled at once (commands.max_in_flight); beyond: CommandBusy. */
  maxInFlight?: number;
}

/** Heavy kinds (a store scan, a republish, a reconfiguration) run at most this many at once. */
const HEAVY = new Set(["history", "replay", "resync", "config/set", "config/get"]);
const HEAVY_MAX = 2;
/**
 * Answers waiting for the broker's PUBACK, all kinds: beyond this, requests are dropped
 * unanswered (and counted in the audit) — a flood must not queue answers without bound in the
 * MQTT client while the broker takes them 20 at a time (its receive maximum).
 */
export const MAX_PENDING_ANSWERS = 256;
/**
 * Busy answers are QoS 0 (a lost one is like a dropped request: the hypervisor times out and
 * retries): they never wait for a PUBACK, which arrives behind the flood itself on the same
 * connection. At most this many per second, and at most BUSY_UNWRITTEN not yet written to the
 * socket (a broker busy sending the flood reads slowly: answers must not pile up in memory —
 * measured by bench/command-flood.ts).
 */
const BUSY_ANSWERS_PER_S = 1000;
const BUSY_UNWRITTEN = 32;

export class CommandDispatcher {
  private readonly inFlight = new Map<string, number>();
  private pending = 0;
  private busyBucket = { at: 0, left: BUSY_ANSWERS_PER_S };
  private busyUnwritten = 0;

  constructor(private readonly opts: DispatcherOptions) {}

  /** Kinds running now (for status and tests). */
  get load(): { pending: number; inFlight: Record<string, number> } {
    return { pending: this.pending, inFlight: Object.fromEntries(this.inFlight) };
  }

  private get prefix(): string {
    const p = this.opts.prefix;
    return typeof p === "string" ? p : p();
  }

  private get cmdBase(): string {
    return `${this.prefix}/${this.opts.gatewayId}/cmd/`;
  }

  /** The subscription that feeds `handle` (QoS 1). */
  get topicFilter(): string {
    return `${this.cmdBase}#`;
  }

  responseTopic(name: string): string {
    return `${this.prefix}/${this.opts.gatewayId}/res/${name}`;
  }

  /** Handle one request. Never rejects. Bounded: see MAX_PENDING_ANSWERS and maxInFlight. */
  async handle(msg: InboundMessage): Promise<void> {
    if (!msg.topic.startsWith(this.cmdBase)) {
      this.opts.logger.warn({ topic: msg.topic }, "message outside the command topics ignored");
      return;
    }
    const name = msg.topic.slice(this.cmdBase.length);
    const kind = HEAVY.has(name) ? name : name.slice(0, 64);
    const max = HEAVY.has(name) ? HEAVY_MAX : (this.opts.maxInFlight ?? 16);
    const running = this.inFlight.get(kind) ?? 0;
    if (running >= max || this.pending >= MAX_PENDING_ANSWERS) {
      const e = new EdgeError(
        ErrorCode.CommandBusy,
        running >= max
          ? `busy: ${running} ${kind} commands are already being handled — retry later`
          : `busy: ${this.pending} answers are waiting for the broker — retry later`,
        { retry_after_ms: 1000 },
      );
      const id = idOf(msg.payload);
      this.refused(name, id, e);
      if (this.busyUnwritten >= BUSY_UNWRITTEN || !this.takeBusyToken()) return; // dropped, counted
      this.busyUnwritten++;
      try {
        await this.answer(name, msg, { id, ...failure(e) }, 0);
      } finally {
        this.busyUnwritten--;
      }
      return;
    }
    this.pending++;
    try {
      let response: CommandResponse;
      this.inFlight.set(kind, running + 1);
      try {
        // The response goes with the configuration in force when it is known: after a
        // config/set that moved the uplink, that is the new broker (and prefix); §8.4.
        response = await this.respond(name, msg);
      } finally {
        const n = (this.inFlight.get(kind) ?? 1) - 1;
        if (n > 0) this.inFlight.set(kind, n);
        else this.inFlight.delete(kind);
      }
      await this.answer(name, msg, response);
    } finally {
      this.pending--;
    }
  }

  private refused(name: string, id: string | null, e: EdgeError): void {
    this.opts.service.auditRefusal(name, id, "hypervisor", e);
  }

  private takeBusyToken(): boolean {
    const now = Date.now();
    const b = this.busyBucket;
    if (now - b.at >= 1000) {
      b.at = now;
      b.left = BUSY_ANSWERS_PER_S;
    }
    if (b.left <= 0) return false;
    b.left--;
    return true;
  }

  private async answer(
    name: string,
    msg: InboundMessage,
    response: CommandResponse,
    qos: 0 | 1 = 1,
  ): Promise<void> {
    try {
      const topic = msg.responseTopic || this.responseTopic(name || "unknown");
      this.opts.logger.info(
        { command: name, id: response.id, ok: response.ok, code: response.error?.code },
        "command handled",
      );
      await this.opts.publisher.publish(topic, JSON.stringify(response), msg.correlationData, qos);
    } catch (e) {
      this.opts.logger.error({ err: e, topic: msg.topic }, "could not answer a command");
    }
  }

  private async respond(name: string, msg: InboundMessage): Promise<CommandResponse> {
    const parsed = parseInbound(msg);
    if ("refused" in parsed) {
      // Refused before the service saw it: audited here (issue 14.6).
      this.refused(name, null, parsed.refused);
      return { id: null, ...failure(parsed.refused) };
    }
    return this.opts.service.execute(name, parsed.body, { who: "hypervisor" });
  }
}

/** The transport-level checks: retained, too large, not UTF-8, not JSON. */
function parseInbound(msg: InboundMessage): { body: unknown } | { refused: EdgeError } {
  if (msg.retain) {
    // A retained request would be executed again at every reconnect of the gateway.
    return {
      refused: new EdgeError(
        ErrorCode.CommandRefused,
        "retained command refused: publish commands with retain=false",
      ),
    };
  }
  if (msg.payload.length > MAX_REQUEST_BYTES) {
    return {
      refused: new EdgeError(
        ErrorCode.CommandInvalid,
        `request of ${msg.payload.length} bytes is larger than ${MAX_REQUEST_BYTES}`,
      ),
    };
  }
  let text: string;
  try {
    // Fatal: invalid UTF-8 is refused, not decoded with U+FFFD (two different byte ids would
    // then collide in the journal). MQTT 5 §1.5.4 requires UTF-8 for payload format 1; JSON
    // is UTF-8 (RFC 8259 §8.1).
    text = UTF8.decode(msg.payload);
  } catch {
    return {
      refused: new EdgeError(
        ErrorCode.CommandInvalid,
        "the request is not valid UTF-8 — send JSON encoded in UTF-8",
      ),
    };
  }
  try {
    return { body: JSON.parse(text) as unknown };
  } catch (e) {
    // V8's message quotes the input; the reason alone is enough (and bounded).
    const why = (e as Error).message.split(",")[0]!.slice(0, 80);
    return {
      refused: new EdgeError(
        ErrorCode.CommandInvalid,
        `malformed JSON (${why}) — the request must be a JSON object with an "id"`,
      ),
    };
  }
}

/** The request's id, when its payload is a JSON object with a string id (for a busy answer). */
function idOf(payload: Buffer): string | null {
  if (payload.length > MAX_REQUEST_BYTES) return null;
  try {
    const id = (JSON.parse(UTF8.decode(payload)) as { id?: unknown } | null)?.id;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
  }
}
