/**
 * One request/response round on the enrolment topics: connect, subscribe to our response topic,
 * publish the request, wait for the matching response, disconnect. No retry here: the state
 * machine (enrol.ts, renew.ts) decides when to try again.
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { EdgeError, ErrorCode, describeError } from "../../core/errors.js";
import {
  type EnrollRequest,
  type EnrollResponse,
  enrollTopics,
  responseSchema,
} from "./protocol.js";

export interface ExchangeOptions {
  url: string;
  /** PEM of the CA the broker's certificate must chain to. */
  ca: string;
  servername?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Client certificate and key (PEM) for renewal over mTLS. */
  cert?: string | undefined;
  key?: string | undefined;
  clientId: string;
  prefix: string;
  gatewayId: string;
  timeoutMs: number;
  logger: Logger;
  /** Called once the broker acknowledged the request (power-cut tests hook a checkpoint here). */
  onPublished?: () => void;
}

function connectError(url: string, e: unknown): EdgeError {
  const msg = describeError(e);
  // CONNACK reason codes: MQTT 5 §3.2.2.2 (134 bad user name or password, 135 not authorized);
  // MQTT 3.1.1 return codes 4 and 5 mean the same.
  const rc = (e as { code?: unknown }).code;
  const authRefused =
    rc === 134 ||
    rc === 135 ||
    rc === 4 ||
    rc === 5 ||
    /not authori[sz]ed|bad user name/i.test(msg);
  const hint = authRefused
    ? " — the broker refused the enrolment identity: check enrolment.username/password in the bundle and the broker's password file"
    : /certificate|self.signed|unable to verify|CERT_|SSL|TLS/i.test(msg)
      ? " — the broker's certificate does not chain to the bundle's platform.ca (or the host name does not match)"
      : " — check the network, the URL and the box's clock";
  return new EdgeError(
    ErrorCode.ProvisionEnrol,
    `cannot reach the enrolment broker ${url}: ${msg}${hint}`,
    {
      url,
      transient: true,
    },
  );
}

async function connect(opts: ExchangeOptions): Promise<MqttClient> {
  const o: IClientOptions = {
    clientId: opts.clientId,
    protocolVersion: 5,
    clean: true,
    reconnectPeriod: 0,
    // The answer timeout is separate: a slow TLS handshake on a busy box is not "no answer".
    connectTimeout: 30_000,
    ca: opts.ca,
    rejectUnauthorized: true,
    ...(opts.servername ? { servername: opts.servername } : {}),
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...(opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {}),
  };
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(opts.url, o);
    const onError = (e: Error) => {
      client.end(true);
      reject(connectError(opts.url, e));
    };
    client.once("error", onError);
    client.once("close", () => onError(new Error("connection closed before CONNACK")));
    client.once("connect", () => {
      client.removeAllListeners("error");
      client.removeAllListeners("close");
      client.on("error", (e) => opts.logger.warn({ err: e }, "enrolment connection error"));
      resolve(client);
    });
  });
}

/** Publish `request` and resolve with the platform's matching response (ok or refusal). */
export async function exchange(
  opts: ExchangeOptions,
  request: EnrollRequest,
): Promise<EnrollResponse> {
  const topics = enrollTopics(opts.prefix, opts.gatewayId);
  const client = await connect(opts);
  try {
    return await new Promise<EnrollResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new EdgeError(
            ErrorCode.ProvisionEnrol,
            `no answer from the enrolment service on ${topics.response} within ${Math.round(opts.timeoutMs / 1000)} s — is the platform's enrolment service running? (will retry)`,
            { transient: true, topic: topics.response },
          ),
        );
      }, opts.timeoutMs);
      const settle = (f: () => void) => {
        clearTimeout(timer);
        f();
      };
      client.on("message", (topic, payload) => {
        if (topic !== topics.response) return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(payload.toString("utf8"));
        } catch {
          opts.logger.warn({ topic }, "enrolment response is not JSON: ignored");
          return;
        }
        const r = responseSchema.safeParse(parsed);
        if (!r.success) {
          opts.logger.warn(
            { topic, problems: r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) },
            "malformed enrolment response: ignored",
          );
          return;
        }
        const res = r.data;
        if (res.gateway !== opts.gatewayId) {
          settle(() =>
            reject(
              new EdgeError(
                ErrorCode.ProvisionCertificate,
                `enrolment response on ${topic} is addressed to gateway "${res.gateway}", not "${opts.gatewayId}": refused (the platform answered on the wrong topic)`,
                { gateway: opts.gatewayId, addressedTo: res.gateway },
              ),
            ),
          );
          return;
        }
        if (res.request_id !== request.request_id) {
          // A late answer to an earlier attempt: harmless, the pending request gets its own.
          opts.logger.debug(
            { got: res.request_id, want: request.request_id },
            "stale enrolment response ignored",
          );
          return;
        }
        settle(() => resolve(res));
      });
      client.subscribe(topics.response, { qos: 1 }, (err, granted) => {
        const refused = granted?.some((g) => g.qos >= 128);
        if (err || refused) {
          settle(() =>
            reject(
              new EdgeError(
                ErrorCode.ProvisionEnrol,
                `the broker refused our subscription to ${topics.response}${err ? `: ${err.message}` : ""} — check the broker ACL (enrolment identity must read <prefix>/enroll/%c/response)`,
                { topic: topics.response },
              ),
            ),
          );
          return;
        }
        client.publish(topics.request, JSON.stringify(request), { qos: 1 }, (perr, packet) => {
          const rc = (packet as { reasonCode?: number } | undefined)?.reasonCode;
          if (perr || (rc !== undefined && rc >= 128)) {
            settle(() =>
              reject(
                new EdgeError(
                  ErrorCode.ProvisionEnrol,
                  `the broker refused our enrolment request on ${topics.request}${perr ? `: ${perr.message}` : ` (reason ${rc})`} — check the broker ACL`,
                  { topic: topics.request },
                ),
              ),
            );
            return;
          }
          opts.onPublished?.();
        });
      });
    });
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}
