/**
 * Certificate renewal before expiry. Over mTLS with the current certificate, the gateway sends a
 * new CSR (new key) with a proof of possession of the current key, verifies the answer like at
 * enrolment, then checks the new pair against the broker (a probe connection) before it replaces
 * anything: the old certificate stays in use until the new one is known to work.
 *
 * Files: renew/key.pem (0600), renew/csr.pem, renew/request.json, renew/cert.pem, then promotion
 * (key first, cert second; a power cut in between is repaired by loadEnrolment()).
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import mqtt from "mqtt";
import type { Logger } from "pino";
import { EdgeError, ErrorCode, describeError } from "../../core/errors.js";
import { VERSION } from "../version.js";
import { checkpoint } from "./checkpoint.js";
import {
  buildCsrPem,
  generatePrivateKeyPem,
  proofPayload,
  publicKeyFingerprint,
  signProof,
  verifyIssuedCertificate,
} from "./crypto.js";
import { problemRecord } from "./enrol.js";
import { type EnrolledTls, loadEnrolment } from "./enrolment.js";
import { exchange } from "./exchange.js";
import { moveFile, provisionPaths, readIfExists, removeFile, writeFileAtomic } from "./files.js";
import { readState, updateState } from "./state.js";

export interface RenewalOptions {
  stateDir: string;
  logger: Logger;
  /** Renew this long before notAfter. */
  renewBeforeMs: number;
  timeoutMs?: number | undefined;
  retryMinMs?: number | undefined;
  retryMaxMs?: number | undefined;
  /** Called once the new certificate is in place: reconnect the uplink with it. */
  onRenewed?: ((tls: EnrolledTls) => void | Promise<void>) | undefined;
}

/** When to renew: notAfter − margin, but never before half the lifetime (a margin longer than the lifetime would renew in a loop). */
export function renewalDueAt(notBefore: string, notAfter: string, renewBeforeMs: number): number {
  const nb = Date.parse(notBefore);
  const na = Date.parse(notAfter);
  return Math.max(na - renewBeforeMs, nb + (na - nb) / 2);
}

/** Connect once with the new pair and disconnect: proves the broker accepts it. */
async function probe(
  tls: EnrolledTls,
  keyPem: string,
  certPem: string,
  timeoutMs: number,
): Promise<void> {
  try {
    const client = await mqtt.connectAsync(tls.url, {
      protocolVersion: 5,
      clientId: `${tls.gatewayId}-probe`,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: Math.min(timeoutMs, 30_000),
      ca: readFileSync(tls.caPath, "utf8"),
      cert: certPem,
      key: keyPem,
      ...(tls.servername ? { servername: tls.servername } : {}),
    });
    await client.endAsync();
  } catch (e) {
    throw new EdgeError(
      ErrorCode.ProvisionCertificate,
      `the broker did not accept the renewed certificate (${describeError(e)}): keeping the current one, will retry`,
      { transient: true },
    );
  }
}

/** One renewal attempt from wherever the renew/ files say we are. */
export async function renewOnce(opts: RenewalOptions): Promise<EnrolledTls> {
  const log = opts.logger;
  const p = provisionPaths(opts.stateDir);
  const current = loadEnrolment(opts.stateDir);
  if (!current)
    throw new EdgeError(ErrorCode.ProvisionCertificate, "cannot renew: this box is not enrolled");
  if (current.expired)
    throw new EdgeError(
      ErrorCode.ProvisionCertificate,
      `cannot renew: the certificate expired on ${current.tls.certificate.notAfter}; a new bundle is needed`,
      { permanent: true },
    );
  const tls = current.tls;
  const gw = tls.gatewayId;
  const timeoutMs = opts.timeoutMs ?? 60_000;

  let key = readIfExists(p.renewKey);
  if (key === undefined) {
    key = generatePrivateKeyPem();
    writeFileAtomic(p.renewKey, key, 0o600);
  }
  let csr = readIfExists(p.renewCsr);
  if (csr === undefined || publicKeyFingerprint(csr) !== publicKeyFingerprint(key)) {
    csr = buildCsrPem(key, gw);
    writeFileAtomic(p.renewCsr, csr, 0o644);
  }
  checkpoint("renew-csr");
  const caPem = readFileSync(p.ca, "utf8");
  let certPem = readIfExists(p.renewCert);
  if (certPem === undefined) {
    const reqText = readIfExists(p.renewRequest);
    const requestId = reqText
      ? (JSON.parse(reqText) as { request_id: string }).request_id
      : randomUUID();
    if (!reqText)
      writeFileAtomic(p.renewRequest, `${JSON.stringify({ request_id: requestId })}\n`, 0o600);
    const currentCert = readFileSync(p.cert, "utf8");
    const currentKey = readFileSync(p.key, "utf8");
    log.info(
      { notAfter: tls.certificate.notAfter, request_id: requestId },
      "renewing the gateway certificate",
    );
    const res = await exchange(
      {
        url: tls.url,
        ca: caPem,
        servername: tls.servername,
        cert: currentCert,
        key: currentKey,
        // Not the gateway id: that would take over the uplink's session.
        clientId: `${gw}-renew`,
        prefix: tls.prefix,
        gatewayId: gw,
        timeoutMs,
        logger: log,
        onPublished: () => checkpoint("renew-published"),
      },
      {
        v: 1,
        type: "renew",
        gateway: gw,
        request_id: requestId,
        csr,
        certificate: currentCert,
        proof: signProof(currentKey, proofPayload(gw, requestId, csr)),
        agent_version: VERSION,
      },
    );
    if (!res.ok) {
      throw new EdgeError(
        ErrorCode.ProvisionEnrol,
        `the platform refused to renew the certificate of "${gw}" (${res.error.code}): ${res.error.message}`,
        { refusal: res.error.code },
      );
    }
    verifyIssuedCertificate(res.certificate, caPem, key, gw);
    certPem = res.certificate;
    writeFileAtomic(p.renewCert, certPem, 0o644);
    checkpoint("renew-cert");
  } else {
    verifyIssuedCertificate(certPem, caPem, key, gw);
  }
  await probe(tls, key, certPem, timeoutMs);
  // Promotion: key first, then cert. loadEnrolment() finishes a promotion cut in the middle.
  moveFile(p.renewKey, p.key);
  checkpoint("renew-promote");
  moveFile(p.renewCert, p.cert);
  removeFile(p.renewCsr);
  removeFile(p.renewRequest);
  const renewed = loadEnrolment(opts.stateDir);
  if (!renewed)
    throw new EdgeError(
      ErrorCode.ProvisionCertificate,
      "renewed certificate could not be loaded back",
    );
  log.info(
    { notAfter: renewed.tls.certificate.notAfter, serial: renewed.tls.certificate.serial },
    "certificate renewed",
  );
  return renewed.tls;
}

export interface RenewalHandle {
  stop(): void;
  /** Renew now (tests, `eclor-edge provision --renew`). */
  renewNow(): Promise<EnrolledTls>;
}

/** Schedule renewals for as long as the agent runs. */
export function startRenewal(opts: RenewalOptions): RenewalHandle {
  const log = opts.logger.child({ component: "provision", task: "renewal" });
  const min = opts.retryMinMs ?? 5_000;
  const max = opts.retryMaxMs ?? 300_000;
  let delay = min;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<EnrolledTls> | undefined;

  const schedule = () => {
    if (stopped) return;
    const cur = loadEnrolment(opts.stateDir);
    if (!cur) {
      log.warn("renewal: not enrolled, nothing to renew");
      return;
    }
    const due = renewalDueAt(
      cur.tls.certificate.notBefore,
      cur.tls.certificate.notAfter,
      opts.renewBeforeMs,
    );
    const state = readState(opts.stateDir);
    updateState(opts.stateDir, {
      renewal: { ...(state?.renewal ?? { status: "idle" }), due_at: new Date(due).toISOString() },
    });
    // setTimeout holds 32-bit ms (~24.8 days): wake up at least hourly and re-check.
    arm(Math.min(Math.max(0, due - Date.now()), 3_600_000));
  };
  const arm = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => void tick(), ms);
    timer.unref?.();
  };
  const attempt = async (): Promise<EnrolledTls> => {
    const prev = readState(opts.stateDir)?.renewal ?? { status: "idle" as const };
    updateState(opts.stateDir, { renewal: { ...prev, status: "renewing" } });
    try {
      const tls = await renewOnce({ ...opts, logger: log });
      updateState(opts.stateDir, {
        certificate: tls.certificate,
        renewal: { status: "idle", last_renewed_at: new Date().toISOString() },
      });
      delay = min;
      await opts.onRenewed?.(tls);
      return tls;
    } catch (e) {
      const rec = problemRecord(e);
      updateState(opts.stateDir, { renewal: { ...prev, status: "failed", last_error: rec } });
      log.error({ code: rec.code }, `certificate renewal failed: ${rec.message}`);
      throw e;
    }
  };
  const tick = async () => {
    if (stopped || running) return;
    const cur = loadEnrolment(opts.stateDir);
    if (
      cur &&
      Date.now() <
        renewalDueAt(
          cur.tls.certificate.notBefore,
          cur.tls.certificate.notAfter,
          opts.renewBeforeMs,
        )
    ) {
      schedule();
      return;
    }
    running = attempt();
    try {
      await running;
      schedule();
    } catch {
      const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
      delay = Math.min(delay * 2, max);
      arm(wait);
    } finally {
      running = undefined;
    }
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    renewNow() {
      return running ?? attempt();
    },
  };
}
