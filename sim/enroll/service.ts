/**
 * Reference enrolment service: the platform's side of docs/mqtt-api.md "Enrolment". Small and
 * honest: it checks every request the way the hypervisor must (token known, for this gateway,
 * unexpired, single-use; CSR self-signature and CN; for renewal, the current certificate and a
 * proof of possession of its key), signs with the platform CA and answers on the gateway's
 * response topic. Used by the tests and the demo.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { parse } from "yaml";
import {
  inspectCsr,
  proofPayload,
  publicKeyFingerprint,
  verifyProof,
} from "../../agent/provision/crypto.js";
import {
  type EnrollResponse,
  type RefusalCode,
  type RenewRequest,
  type EnrolRequest,
  enrollTopics,
  requestSchema,
} from "../../agent/provision/protocol.js";
import { type SigningCa, signCsr } from "./ca.js";
import type { TokenRegistry } from "./registry.js";

export interface EnrollServiceOptions {
  url: string;
  prefix: string;
  ca: SigningCa;
  registry: TokenRegistry;
  /** Validity of issued certificates (ms). */
  validityMs: number;
  /** `<dir>/<gateway>.yaml` (or `default.yaml`) is sent as the initial configuration. */
  configDir?: string | undefined;
  /** Broker connection of the platform identity (mTLS or user/password). */
  connect: IClientOptions;
  logger: Logger;
}

class Refusal extends Error {
  constructor(
    readonly code: RefusalCode,
    message: string,
  ) {
    super(message);
  }
}

export class EnrollService {
  private client?: MqttClient;
  /** Requests answered, for tests and the demo's summary. */
  readonly answered: { gateway: string; ok: boolean; code?: RefusalCode }[] = [];

  constructor(private readonly opts: EnrollServiceOptions) {}

  async start(): Promise<void> {
    const client = await mqtt.connectAsync(this.opts.url, {
      protocolVersion: 5,
      clean: true,
      ...this.opts.connect,
    });
    this.client = client;
    client.on("error", (e) =>
      this.opts.logger.warn({ err: e }, "enrolment service connection error"),
    );
    client.on("message", (topic, payload) => {
      this.handle(topic, payload).catch((e: unknown) =>
        this.opts.logger.error({ err: e }, "enrolment request failed"),
      );
    });
    const granted = await client.subscribeAsync(`${this.opts.prefix}/enroll/+/request`, { qos: 1 });
    if (granted.some((g) => g.qos >= 128))
      throw new Error("the broker refused the subscription to the enrolment requests (ACL)");
    this.opts.logger.info(
      { url: this.opts.url, prefix: this.opts.prefix },
      "enrolment service ready",
    );
  }

  async stop(): Promise<void> {
    await this.client?.endAsync();
  }

  private async handle(topic: string, payload: Buffer): Promise<void> {
    const parts = topic.slice(this.opts.prefix.length + 1).split("/");
    const gw = parts[1]!;
    let requestId = "unknown-request";
    let res: EnrollResponse;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(payload.toString("utf8"));
      } catch {
        throw new Refusal("bad_request", "request is not JSON");
      }
      const id = (raw as { request_id?: unknown } | null)?.request_id;
      if (typeof id === "string" && id.length >= 8 && id.length <= 64) requestId = id;
      const parsed = requestSchema.safeParse(raw);
      if (!parsed.success) {
        throw new Refusal(
          "bad_request",
          parsed.error.issues
            .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
            .join("; "),
        );
      }
      const req = parsed.data;
      if (req.gateway !== gw)
        throw new Refusal(
          "gateway_mismatch",
          `request for "${req.gateway}" published on the topic of "${gw}"`,
        );
      res = req.type === "enrol" ? this.enrol(req) : this.renew(req);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      res = {
        v: 1,
        gateway: gw,
        request_id: requestId,
        ok: false,
        error: { code: e.code, message: e.message },
      };
    }
    this.answered.push({ gateway: gw, ok: res.ok, ...(res.ok ? {} : { code: res.error.code }) });
    this.opts.logger.info(
      { gateway: gw, ok: res.ok, ...(res.ok ? {} : { refusal: res.error.code }) },
      res.ok ? "certificate issued" : `refused: ${res.ok ? "" : res.error.message}`,
    );
    await this.client!.publishAsync(
      enrollTopics(this.opts.prefix, gw).response,
      JSON.stringify(res),
      { qos: 1 },
    );
  }

  private checkCsr(csr: string, gw: string): string {
    let info: ReturnType<typeof inspectCsr>;
    try {
      info = inspectCsr(csr);
    } catch (e) {
      throw new Refusal(
        "csr_invalid",
        `CSR is not a readable PKCS#10 PEM: ${(e as Error).message}`,
      );
    }
    if (!info.signatureOk) throw new Refusal("csr_invalid", "CSR self-signature does not verify");
    if (info.cn !== gw)
      throw new Refusal(
        "cn_mismatch",
        `CSR common name is "${info.cn ?? "(none)"}", expected the gateway id "${gw}"`,
      );
    return publicKeyFingerprint(csr);
  }

  private enrol(req: EnrolRequest): EnrollResponse {
    const gw = req.gateway;
    const entry = this.opts.registry.lookup(req.token);
    if (!entry) throw new Refusal("token_unknown", "enrolment token unknown to the platform");
    if (entry.gateway !== gw)
      throw new Refusal(
        "gateway_mismatch",
        `enrolment token was issued for "${entry.gateway}", not "${gw}"`,
      );
    const fp = this.checkCsr(req.csr, gw);
    const base = { v: 1 as const, gateway: gw, request_id: req.request_id, ok: true as const };
    if (entry.used) {
      if (entry.used.public_key_sha256 === fp) {
        // Same box, same key, asking again after a power cut: same answer.
        return { ...base, certificate: entry.used.certificate, ...this.configFor(gw) };
      }
      throw new Refusal(
        "token_used",
        `enrolment token already used on ${entry.used.at} by another key`,
      );
    }
    if (Date.now() > Date.parse(entry.expires))
      throw new Refusal("token_expired", `enrolment token expired at ${entry.expires}`);
    const certificate = signCsr(this.opts.ca, req.csr, this.opts.validityMs);
    // Persist before answering: a crash here must not let the token be used twice.
    this.opts.registry.markUsed(req.token, fp, certificate);
    return { ...base, certificate, ...this.configFor(gw) };
  }

  private renew(req: RenewRequest): EnrollResponse {
    const gw = req.gateway;
    let current: X509Certificate;
    try {
      current = new X509Certificate(req.certificate);
    } catch {
      throw new Refusal("certificate_invalid", "current certificate is not a readable PEM");
    }
    const ca = new X509Certificate(this.opts.ca.certPem);
    if (!current.checkIssued(ca) || !current.verify(ca.publicKey))
      throw new Refusal(
        "certificate_invalid",
        "current certificate was not issued by the platform CA",
      );
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(current.subject)?.[1];
    if (cn !== gw) {
      throw new Refusal(
        "cn_mismatch",
        `current certificate is for "${cn ?? "(no CN)"}", not "${gw}"`,
      );
    }
    if (Date.now() > Date.parse(current.validTo))
      throw new Refusal(
        "certificate_invalid",
        "current certificate has expired: the gateway must enrol again with a new bundle",
      );
    this.checkCsr(req.csr, gw);
    if (!verifyProof(req.certificate, proofPayload(gw, req.request_id, req.csr), req.proof)) {
      throw new Refusal(
        "proof_invalid",
        "renewal proof does not verify with the current certificate's key",
      );
    }
    return {
      v: 1,
      gateway: gw,
      request_id: req.request_id,
      ok: true,
      certificate: signCsr(this.opts.ca, req.csr, this.opts.validityMs),
    };
  }

  private configFor(gw: string): { config?: Record<string, unknown> } {
    if (!this.opts.configDir) return {};
    for (const name of [`${gw}.yaml`, "default.yaml"]) {
      try {
        return {
          config: parse(readFileSync(join(this.opts.configDir, name), "utf8")) as Record<
            string,
            unknown
          >,
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
    return {};
  }
}
