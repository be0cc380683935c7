/**
 * The daemon's provisioning step (agent/hooks.ts loadProvisioner): runs after the store is open
 * and before the uplink's first connection, when the config has a `provisioning:` block.
 *
 * Acquisition never waits for enrolment (ARCHITECTURE invariant 3): the step returns at once with
 * the TLS paths the enrolment will fill. An enrolled box connects right away; a box still
 * enrolling keeps polling and storing while its uplink waits (the uplink reads the TLS files at
 * each attempt, so the first attempt after enrolment succeeds). Renewal then runs for as long as
 * the agent does; it swaps key.pem/cert.pem in place, picked up at the next reconnect.
 */
import type { Logger } from "pino";
import type { Config, UplinkConfig } from "../../config/schema.js";
import { describeError } from "../../core/errors.js";
import type { ProvisionContext } from "../hooks.js";
import { ensureEnrolled } from "./enrol.js";
import { loadEnrolment } from "./enrolment.js";
import { provisionPaths } from "./files.js";
import { type RenewalHandle, startRenewal } from "./renew.js";

interface Running {
  abort: AbortController;
  renewal?: RenewalHandle;
}

/** One provisioning task per state directory (a restarted in-process agent replaces its own). */
const running = new Map<string, Running>();

/** Stop enrolment retries and renewal (agent stop, tests). */
export function stopProvisioning(stateDir?: string): void {
  for (const [dir, r] of running) {
    if (stateDir !== undefined && dir !== stateDir) continue;
    r.abort.abort(new Error("agent stopping"));
    r.renewal?.stop();
    running.delete(dir);
  }
}

export async function provisionStep(ctx: ProvisionContext): Promise<UplinkConfig["tls"]> {
  const config: Config = ctx.config;
  const p = config.provisioning!;
  const log: Logger = ctx.logger;
  const stateDir = config.state_dir;
  stopProvisioning(stateDir);
  const task: Running = { abort: new AbortController() };
  running.set(stateDir, task);
  const paths = provisionPaths(stateDir);
  const tls: UplinkConfig["tls"] = {
    ...config.uplink.tls,
    reject_unauthorized: config.uplink.tls?.reject_unauthorized ?? true,
    ca: paths.ca,
    cert: paths.cert,
    key: paths.key,
  };
  const opts = {
    stateDir,
    bundlePath: p.bundle,
    logger: log,
    timeoutMs: p.timeout,
    retryMaxMs: p.retry_max,
    signal: task.abort.signal,
  };
  const afterEnrolment = (url: string) => {
    if (url !== config.uplink.url) {
      log.warn(
        { bundle: url, config: config.uplink.url },
        "uplink.url differs from the bundle's platform.url: the uplink uses uplink.url, which must be the platform's mTLS listener",
      );
    }
    if (task.abort.signal.aborted) return;
    task.renewal = startRenewal({
      stateDir,
      logger: log,
      renewBeforeMs: p.renew_before,
      timeoutMs: p.timeout,
      retryMaxMs: p.retry_max,
    });
  };
  const current = loadEnrolment(stateDir);
  if (current && !current.expired) {
    const done = await ensureEnrolled(opts); // already enrolled: only finishes any bookkeeping
    log.info(
      { gateway: done.gatewayId, notAfter: done.certificate.notAfter },
      "enrolled: connecting with the gateway certificate (mTLS)",
    );
    afterEnrolment(done.url);
    return tls;
  }
  log.warn(
    "not enrolled yet: enrolling in the background; acquisition runs and readings are stored until the uplink can connect with the new certificate",
  );
  ensureEnrolled(opts).then(
    (done) => afterEnrolment(done.url),
    (e: unknown) => {
      if (!task.abort.signal.aborted) log.error(`enrolment stopped: ${describeError(e)}`);
    },
  );
  return tls;
}
