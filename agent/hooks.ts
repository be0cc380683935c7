/**
 * Hook points of the daemon for other parts of the project. Defaults do nothing, so the agent
 * runs anywhere; the owners replace the loaders' bodies:
 *
 * - systemd notify (packaging, issue 9): `loadNotifier()` returns the Notifier the daemon calls.
 *   `ready()` is called once the store is open (or running in memory after a clear error) and the
 *   uplink has been started — not "connected": a gateway with its broker down for a week is
 *   still doing its job and must not be restarted by systemd's start timeout. `status(text)` is
 *   called on every change of the one-line summary (uplink state, backlog) and at least every
 *   30 s; `stopping()` when SIGTERM/SIGINT arrives. `ready(healthy)` starts the watchdog pings,
 *   each one sent only when `healthy()` says so (the health model, agent/health/monitor.ts).
 * - provisioning (issue 10): `loadProvisioner(config)` may return a step that runs after the store
 *   is open and before the uplink's first connection. It may enrol the gateway and return new TLS
 *   settings (paths of the CA, certificate, key) that replace `uplink.tls`; it may also call
 *   `agent.uplink.setTls(...)` later (certificate renewal) — the next connection uses them.
 */
import type { Logger } from "pino";
import type { Config, UplinkConfig } from "../config/schema.js";
import type { Store } from "./store/store.js";

export interface Notifier {
  /** `healthy` is asked before each watchdog ping: false skips it (systemd then restarts us). */
  ready(healthy?: () => boolean): void;
  status(text: string): void;
  stopping(): void;
}

export const noopNotifier: Notifier = { ready() {}, status() {}, stopping() {} };

/**
 * systemd sd_notify (agent/systemd/notify.ts): READY=1 also starts the WATCHDOG=1 pings (every
 * WatchdogSec/2 while the event loop runs and `healthy()` agrees). A no-op with one debug log line outside a Type=notify
 * unit or without the optional native helper `sd-notify`.
 */
export async function loadNotifier(logger?: Pick<Logger, "debug" | "warn">): Promise<Notifier> {
  const { createNotifier } = await import("./systemd/notify.js");
  const n = createNotifier(logger ? { logger } : {});
  if (!n.active) return noopNotifier;
  return {
    ready(healthy) {
      n.ready();
      n.watchdog.start(healthy);
    },
    status: (text) => n.status(text),
    stopping: () => n.stopping(),
  };
}

export interface ProvisionContext {
  config: Config;
  logger: Logger;
  /** The open store (its database, for resumable enrolment state). */
  store: Store;
}

/** Returns TLS settings to use instead of `config.uplink.tls`, or undefined to keep them. */
export type ProvisionStep = (ctx: ProvisionContext) => Promise<UplinkConfig["tls"] | undefined>;

export async function loadProvisioner(config: Config): Promise<ProvisionStep | undefined> {
  // Enrolment and renewal (agent/provision/agent-step.ts) when the config asks for them.
  if (!config.provisioning) return undefined;
  const { provisionStep } = await import("./provision/agent-step.js");
  return provisionStep;
}
