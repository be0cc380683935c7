/**
 * The initial configuration the platform sends with the certificate. The box fills in what only
 * it knows (its id, the mTLS files it just obtained, where its state lives) and validates the
 * result like any config file. An invalid one is kept aside for the technician and reported; it
 * never blocks enrolment (the certificate is what the box needs to be reachable and fixed).
 */
import type { Logger } from "pino";
import { stringify } from "yaml";
import { validateConfigObject } from "../../config/load.js";
import { describeError } from "../../core/errors.js";
import type { Bundle } from "./bundle.js";
import { provisionPaths, removeFile, writeFileAtomic } from "./files.js";

export function completeInitialConfig(
  raw: Record<string, unknown>,
  stateDir: string,
  bundle: Bundle,
): Record<string, unknown> {
  const p = provisionPaths(stateDir);
  const gateway: Record<string, unknown> = {
    ...(raw.gateway as Record<string, unknown> | undefined),
    id: bundle.gateway.id,
  };
  if (bundle.gateway.commune && gateway.commune === undefined)
    gateway.commune = bundle.gateway.commune;
  if (bundle.gateway.name && gateway.name === undefined) gateway.name = bundle.gateway.name;
  if (bundle.gateway.location && gateway.location === undefined)
    gateway.location = bundle.gateway.location;
  const uplinkIn = (raw.uplink as Record<string, unknown> | undefined) ?? {};
  const tlsIn = (uplinkIn.tls as Record<string, unknown> | undefined) ?? {};
  const uplink = {
    ...uplinkIn,
    url: uplinkIn.url ?? bundle.platform.url,
    prefix: uplinkIn.prefix ?? bundle.platform.prefix,
    tls: {
      ...tlsIn,
      ca: p.ca,
      cert: p.cert,
      key: p.key,
      ...(bundle.platform.servername ? { servername: bundle.platform.servername } : {}),
    },
  };
  return {
    version: 1,
    ...raw,
    gateway,
    state_dir: raw.state_dir ?? stateDir,
    uplink,
    // Keeps renewal running when the agent later starts from this file.
    provisioning: raw.provisioning ?? {},
  };
}

export function storeInitialConfig(
  stateDir: string,
  raw: Record<string, unknown>,
  bundle: Bundle,
  log: Logger,
): void {
  const p = provisionPaths(stateDir);
  const full = completeInitialConfig(raw, stateDir, bundle);
  try {
    validateConfigObject(full, "initial configuration from the platform", {
      env: process.env,
      baseDir: p.dir,
    });
    writeFileAtomic(p.config, stringify(full, { lineWidth: 0 }), 0o600);
    removeFile(`${p.config}.rejected`);
    log.info({ path: p.config }, "stored the initial configuration received from the platform");
  } catch (e) {
    writeFileAtomic(`${p.config}.rejected`, stringify(full, { lineWidth: 0 }), 0o600);
    log.error(
      { path: `${p.config}.rejected` },
      `the initial configuration from the platform is invalid and was not applied: ${describeError(e)}`,
    );
  }
}
