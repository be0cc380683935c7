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
  publish(topic: string, payload: string, correlationData?: Buffer): Promise<void>;
}

export interface DispatcherOptions {
  /** A function when the prefix can change at run time (remote configuration of the uplink). */
  prefix: string | (() => string);
  gatewayId: string;
  service: CommandService;
  publisher: ResponsePublisher;
  logger: Logger;
}

export class CommandDispatcher {
  constructor(private readonly opts: DispatcherOptions) {}

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

  /** Handle one request. Never rejects. */
  async handle(msg: InboundMessage): Promise<void> {
    try {
      if (!msg.topic.startsWith(this.cmdBase)) {
        this.opts.logger.warn({ topic: msg.topic }, "message outside the command topics ignored");
        return;
      }
      const name = msg.topic.slice(this.cmdBase.length);
      // The response goes with the configuration in force when it is known: after a config/set
      // that moved the uplink, that is the new broker (and prefix); see docs/mqtt-api.md §8.4.
      const response = await this.respond(name, msg);
      const topic = msg.responseTopic || this.responseTopic(name || "unknown");
      this.opts.logger.info(
        { command: name, id: response.id, ok: response.ok, code: response.error?.code },
        "command handled",
      );
      await this.opts.publisher.publish(topic, JSON.stringify(response), msg.correlationData);
    } catch (e) {
      this.opts.logger.error({ err: e, topic: msg.topic }, "could not answer a command");
    }
  }

  private async respond(name: string, msg: InboundMessage): Promise<CommandResponse> {
    if (msg.retain) {
      // A retained request would be executed again at every reconnect of the gateway.
      return {
        id: null,
        ...failure(
          new EdgeError(
            ErrorCode.CommandRefused,
            "retained command refused: publish commands with retain=false",
          ),
        ),
      };
    }
    if (msg.payload.length > MAX_REQUEST_BYTES) {
      return {
        id: null,
        ...failure(
          new EdgeError(
            ErrorCode.CommandInvalid,
            `request of ${msg.payload.length} bytes is larger than ${MAX_REQUEST_BYTES}`,
          ),
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
        id: null,
        ...failure(
          new EdgeError(
            ErrorCode.CommandInvalid,
            "the request is not valid UTF-8 — send JSON encoded in UTF-8",
          ),
        ),
      };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      // V8's message quotes the input; the reason alone is enough (and bounded).
      const why = (e as Error).message.split(",")[0]!.slice(0, 80);
      return {
        id: null,
        ...failure(
          new EdgeError(
            ErrorCode.CommandInvalid,
            `malformed JSON (${why}) — the request must be a JSON object with an "id"`,
          ),
        ),
      };
    }
    return this.opts.service.execute(name, body, { who: "hypervisor" });
  }
}
