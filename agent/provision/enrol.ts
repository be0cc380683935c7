/**
 * First-boot enrolment as a resumable state machine. Each step leaves a file in
 * `<state_dir>/provision/` (written atomically), and each run starts by looking at which files
 * exist, so a power cut at any point resumes where it stopped:
 *
 *   bundle.yaml (copy, 0600) → key.pem (0600) → csr.pem → request.json → [MQTT exchange]
 *   → verify → ca.pem, config.yaml, cert.pem → state.json "enrolled" → token deleted
 *
 * The request id is persisted before publishing and the platform is idempotent on
 * (token, public key), so a gateway that dies after the platform consumed its single-use token
 * asks again with the same CSR and receives the same certificate.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { EdgeError, ErrorCode, describeError, isEdgeError } from "../../core/errors.js";
import { VERSION } from "../version.js";
import {
  type Bundle,
  bundleToYaml,
  loadBundleFile,
  parseBundleText,
  withoutToken,
} from "./bundle.js";
import { checkpoint } from "./checkpoint.js";
import {
  buildCsrPem,
  generatePrivateKeyPem,
  publicKeyFingerprint,
  verifyIssuedCertificate,
} from "./crypto.js";
import { exchange } from "./exchange.js";
import { existsSync, provisionPaths, readIfExists, removeFile, writeFileAtomic } from "./files.js";
import { storeInitialConfig } from "./initial-config.js";
import { type EnrolledTls, loadEnrolment } from "./enrolment.js";
import { PERMANENT_REFUSALS, type EnrolRequest } from "./protocol.js";
import { type ProblemRecord, readState, updateState } from "./state.js";

export interface EnrolOptions {
  stateDir: string;
  /** Bundle file, re-read at every attempt (an installer may drop a corrected one). */
  bundlePath?: string | undefined;
  /** An already-validated bundle (CLI). */
  bundle?: Bundle | undefined;
  logger: Logger;
  /** How long to wait for the platform's answer. Default 60 s. */
  timeoutMs?: number | undefined;
  /** Retry delays: doubling from min to max on transient failures; max after a refusal. */
  retryMinMs?: number | undefined;
  retryMaxMs?: number | undefined;
  /** Give up after this many attempts (CLI); default: never (the daemon). */
  maxAttempts?: number | undefined;
  /** Give up at once on a refusal only a new bundle fixes (CLI); the daemon keeps retrying slowly. */
  stopOnPermanent?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

interface RequestRecord {
  request_id: string;
  token_sha256: string;
  created_at: string;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

function permanent(message: string, details: Record<string, unknown> = {}): EdgeError {
  return new EdgeError(ErrorCode.ProvisionEnrol, message, { ...details, permanent: true });
}

/** Pick the bundle to use this attempt and keep the state copy in step with it. */
function resolveBundle(opts: EnrolOptions): Bundle {
  const paths = provisionPaths(opts.stateDir);
  const copyText = readIfExists(paths.bundle);
  const copy = copyText !== undefined ? parseBundleText(copyText, paths.bundle) : undefined;
  let given: Bundle | undefined = opts.bundle;
  if (!given && opts.bundlePath && (existsSync(opts.bundlePath) || !copy))
    given = loadBundleFile(opts.bundlePath);
  if (!given && !copy) {
    throw permanent(
      "no provisioning bundle: put the bundle from the platform on the boot partition or run eclor-edge provision --bundle FILE",
    );
  }
  if (given && copy && given.gateway.id !== copy.gateway.id) {
    throw permanent(
      `this box is already being enrolled as "${copy.gateway.id}" but the bundle is for "${given.gateway.id}": use the right bundle, or delete ${paths.dir} to start over`,
      { gateway: copy.gateway.id, bundleGateway: given.gateway.id },
    );
  }
  if (given?.enrolment.token && given.enrolment.token !== copy?.enrolment.token) {
    // A new (or first) token: remember it, and forget a request made with an older token.
    writeFileAtomic(paths.bundle, bundleToYaml(given), 0o600);
    removeFile(paths.request);
    return given;
  }
  const use = copy?.enrolment.token ? copy : given!;
  if (!use.enrolment.token) {
    throw permanent(
      `the bundle for "${use.gateway.id}" has no enrolment token (it was used and deleted): ask the platform for a new bundle`,
      { gateway: use.gateway.id },
    );
  }
  return use;
}

function ensureKeyAndCsr(stateDir: string, gatewayId: string, log: Logger): string {
  const paths = provisionPaths(stateDir);
  let key = readIfExists(paths.key);
  if (key === undefined) {
    key = generatePrivateKeyPem();
    writeFileAtomic(paths.key, key, 0o600);
    log.info({ path: paths.key }, "generated the gateway's private key (it never leaves this box)");
  }
  checkpoint("key");
  const csr = readIfExists(paths.csr);
  if (csr === undefined || publicKeyFingerprint(csr) !== publicKeyFingerprint(key)) {
    writeFileAtomic(paths.csr, buildCsrPem(key, gatewayId), 0o644);
    log.info({ cn: gatewayId }, "built the certificate signing request");
  }
  checkpoint("csr");
  return key;
}

function ensureRequest(stateDir: string, token: string): RequestRecord {
  const paths = provisionPaths(stateDir);
  const text = readIfExists(paths.request);
  if (text !== undefined) {
    const rec = JSON.parse(text) as RequestRecord;
    if (rec.token_sha256 === sha256(token)) return rec;
  }
  const rec: RequestRecord = {
    request_id: randomUUID(),
    token_sha256: sha256(token),
    created_at: new Date().toISOString(),
  };
  writeFileAtomic(paths.request, `${JSON.stringify(rec)}\n`, 0o600);
  return rec;
}

/** Delete the used token everywhere we can; idempotent (resumes after a power cut). */
function deleteToken(
  opts: EnrolOptions,
  bundle: Bundle,
  usedHash: string | undefined,
  log: Logger,
): void {
  const paths = provisionPaths(opts.stateDir);
  if (bundle.enrolment.token || bundle.enrolment.password)
    writeFileAtomic(paths.bundle, bundleToYaml(withoutToken(bundle)), 0o600);
  if (opts.bundlePath && existsSync(opts.bundlePath)) {
    try {
      const original = loadBundleFile(opts.bundlePath);
      // Only the spent token: a fresh bundle dropped for a later re-enrolment stays intact.
      if (original.enrolment.token && sha256(original.enrolment.token) === usedHash)
        writeFileAtomic(opts.bundlePath, bundleToYaml(withoutToken(original)), 0o600);
    } catch (e) {
      // A read-only boot partition: the token is spent anyway (single-use), say so and go on.
      log.warn(
        { path: opts.bundlePath, err: describeError(e) },
        "could not remove the used token from the original bundle file; it is single-use and already spent",
      );
    }
  }
  removeFile(paths.request);
  removeFile(paths.csr);
}

/** One enrolment attempt from wherever the files say we are. */
export async function enrolOnce(opts: EnrolOptions): Promise<EnrolledTls> {
  const log = opts.logger;
  const paths = provisionPaths(opts.stateDir);
  const done = loadEnrolment(opts.stateDir);
  if (done && !done.expired) {
    // Enrolled, possibly cut before the bookkeeping finished: finish it (idempotent).
    const st = readState(opts.stateDir);
    // Cut between storing the certificate and recording the spent token: request.json has it.
    const reqText = readIfExists(paths.request);
    const usedHash =
      st?.used_token_sha256 ??
      (reqText ? (JSON.parse(reqText) as RequestRecord).token_sha256 : undefined);
    if (st?.status !== "enrolled" || st.step !== "done") {
      updateState(
        opts.stateDir,
        {
          status: "enrolled",
          step: "cleanup",
          gateway: done.tls.gatewayId,
          certificate: done.tls.certificate,
          enrolled_at: st?.enrolled_at ?? new Date().toISOString(),
          ...(usedHash ? { used_token_sha256: usedHash } : {}),
        },
        ["last_error", "next_retry_at"],
      );
    }
    const copy = readIfExists(paths.bundle);
    if (copy !== undefined) deleteToken(opts, parseBundleText(copy, paths.bundle), usedHash, log);
    if (st?.step !== "done") updateState(opts.stateDir, { step: "done" });
    return done.tls;
  }
  if (done?.expired) {
    // Expired certificate: only a new bundle (new token) can recover; fall through to enrol.
    log.warn(
      { notAfter: done.tls.certificate.notAfter },
      "the gateway certificate has expired: enrolling again with the bundle",
    );
  }
  const bundle = resolveBundle(opts);
  const gw = bundle.gateway.id;
  const token = bundle.enrolment.token!;
  updateState(opts.stateDir, { status: "enrolling", step: "key", gateway: gw });
  checkpoint("bundle");
  const key = ensureKeyAndCsr(opts.stateDir, gw, log);
  const csr = readIfExists(paths.csr)!;
  const rec = ensureRequest(opts.stateDir, token);
  updateState(opts.stateDir, { step: "exchange" });
  checkpoint("request");

  const expires = Date.parse(bundle.enrolment.expires);
  if (Date.now() > expires) {
    throw permanent(
      `the enrolment token expired at ${bundle.enrolment.expires} (box clock: ${new Date().toISOString()}): ask the platform for a new bundle (or fix the clock if it is wrong)`,
      { refusal: "token_expired", gateway: gw },
    );
  }
  const request: EnrolRequest = {
    v: 1,
    type: "enrol",
    gateway: gw,
    request_id: rec.request_id,
    csr,
    token,
    commune: bundle.gateway.commune,
    ...(bundle.gateway.name ? { name: bundle.gateway.name } : {}),
    ...(bundle.gateway.location ? { location: bundle.gateway.location } : {}),
    agent_version: VERSION,
  };
  const url = bundle.platform.enrolment_url ?? bundle.platform.url;
  log.info({ url, gateway: gw, request_id: rec.request_id }, "sending the enrolment request");
  const res = await exchange(
    {
      url,
      ca: bundle.platform.ca,
      servername: bundle.platform.servername,
      username: bundle.enrolment.username,
      password: bundle.enrolment.password,
      clientId: gw,
      prefix: bundle.platform.prefix,
      gatewayId: gw,
      timeoutMs: opts.timeoutMs ?? 60_000,
      logger: log,
      onPublished: () => checkpoint("published"),
    },
    request,
  );
  checkpoint("response");
  if (!res.ok) {
    const perm = PERMANENT_REFUSALS.has(res.error.code);
    throw new EdgeError(
      ErrorCode.ProvisionEnrol,
      `the platform refused the enrolment of "${gw}" (${res.error.code}): ${res.error.message}${perm ? " — ask the platform for a new bundle" : ""}`,
      { refusal: res.error.code, gateway: gw, permanent: perm },
    );
  }
  updateState(opts.stateDir, { step: "verify" });
  const facts = verifyIssuedCertificate(res.certificate, bundle.platform.ca, key, gw);
  updateState(opts.stateDir, { step: "store" });
  writeFileAtomic(paths.ca, bundle.platform.ca, 0o644);
  if (res.config) storeInitialConfig(opts.stateDir, res.config, bundle, log);
  writeFileAtomic(paths.cert, res.certificate, 0o644);
  checkpoint("cert");
  updateState(
    opts.stateDir,
    {
      status: "enrolled",
      step: "cleanup",
      used_token_sha256: rec.token_sha256,
      certificate: facts,
      enrolled_at: new Date().toISOString(),
      renewal: { status: "idle" },
    },
    ["last_error", "next_retry_at"],
  );
  checkpoint("state");
  deleteToken(opts, bundle, rec.token_sha256, log);
  updateState(opts.stateDir, { step: "done" });
  checkpoint("token");
  log.info(
    { gateway: gw, notAfter: facts.notAfter, serial: facts.serial },
    "enrolled: certificate verified against the bundle CA; switching to mTLS",
  );
  return loadEnrolment(opts.stateDir)!.tls;
}

export function isPermanentFailure(e: unknown): boolean {
  if (!isEdgeError(e)) return false;
  return e.code === ErrorCode.ProvisionBundle || e.details?.permanent === true;
}

export function problemRecord(e: unknown): ProblemRecord {
  const refusal = isEdgeError(e) ? (e.details?.refusal as string | undefined) : undefined;
  return {
    code: isEdgeError(e) ? `${e.codeName}${refusal ? `/${refusal}` : ""}` : "Internal",
    message: isEdgeError(e) ? e.text : describeError(e),
    at: new Date().toISOString(),
    permanent: isPermanentFailure(e),
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Make sure this box is enrolled, retrying until it is (or `maxAttempts`/`signal` says stop).
 * Transient failures (network, timeout, a certificate that fails verification) back off from
 * retryMinMs doubling to retryMaxMs with jitter; refusals only a new bundle can fix are retried
 * every retryMaxMs, re-reading the bundle file each time. Returns the mTLS settings to use.
 */
export async function ensureEnrolled(opts: EnrolOptions): Promise<EnrolledTls> {
  const log = opts.logger.child({ component: "provision" });
  const min = opts.retryMinMs ?? 2_000;
  const max = opts.retryMaxMs ?? 300_000;
  let delay = min;
  for (let attempt = 1; ; attempt++) {
    const prev = readState(opts.stateDir);
    if (prev?.status !== "enrolled")
      updateState(opts.stateDir, { attempts: (prev?.attempts ?? 0) + 1 });
    try {
      return await enrolOnce({ ...opts, logger: log });
    } catch (e) {
      const rec = problemRecord(e);
      const last =
        (opts.maxAttempts !== undefined && attempt >= opts.maxAttempts) ||
        (rec.permanent && opts.stopOnPermanent === true);
      const wait = rec.permanent ? max : Math.round(delay * (0.75 + Math.random() * 0.5));
      delay = Math.min(delay * 2, max);
      updateState(
        opts.stateDir,
        {
          status: rec.permanent ? "failed" : "enrolling",
          last_error: rec,
          ...(last ? {} : { next_retry_at: new Date(Date.now() + wait).toISOString() }),
        },
        last ? ["next_retry_at"] : [],
      );
      log.error(
        { code: rec.code, attempt, retryInMs: last ? undefined : wait },
        `enrolment failed: ${rec.message}`,
      );
      if (last || opts.signal?.aborted) throw e;
      await sleep(wait, opts.signal);
    }
  }
}
