/**
 * What a remote configuration changes (`planChanges`), what the agent must offer to apply it
 * (`ConfigHost`) and what `config/set` answers (`SetResult`). Kept apart from the manager's
 * validate/apply/roll-back sequence (config-manager.ts).
 */
import { type IdChange, diffById } from "../../config/diff.js";
import type { Config } from "../../config/schema.js";
import { canonicalJson } from "../../config/canonical.js";

export interface ApplyPlan {
  start: string[];
  stop: string[];
  /** Drivers whose block changed: updated in place when the driver can (`Driver.reconfigure`), else restarted. */
  restart: string[];
  uplink: boolean;
  /** Top-level sections that changed but only take effect at the next agent start. */
  pendingRestart: string[];
}

/** A driver of `plan.restart` that took its new block in place, and the devices it restarted. */
export interface Reconfigured {
  driver: string;
  devices: string[];
}

/** What the host did with a plan, beyond the plan itself. */
export interface ApplyReport {
  reconfigured: Reconfigured[];
}

/** What the config manager needs from the agent. */
export interface ConfigHost {
  current(): Config;
  /**
   * Stop/start the drivers of the plan with `next`, update those of `plan.restart` in place or
   * restart them, reconnect the uplink with the new settings if `plan.uplink`. Resolves when done
   * (a driver that fails to start shows in health(), it does not throw; the uplink may still be
   * connecting).
   */
  apply(next: Config, plan: ApplyPlan): Promise<ApplyReport | void>;
  health(): {
    failed: { id: string; reason: string }[];
    uplinkConnected: boolean;
    /** The uplink's last connection problem, in words, to explain a rollback. */
    uplinkError?: string | undefined;
  };
}

export interface SetResult {
  version: number | null;
  applied: boolean;
  /** Drivers stopped and started again with their new block. */
  restarted: string[];
  /** Drivers updated in place: only the listed devices were restarted, the others kept polling. */
  reconfigured: Reconfigured[];
  started: string[];
  stopped: string[];
  pending_restart: string[];
}

export function setResult(
  plan: ApplyPlan,
  report: ApplyReport | void,
  version: number | null,
  applied: boolean,
): SetResult {
  const reconfigured = report?.reconfigured ?? [];
  const inPlace = new Set(reconfigured.map((r) => r.driver));
  return {
    version,
    applied,
    restarted: plan.restart.filter((id) => !inPlace.has(id)),
    reconfigured,
    started: plan.start,
    stopped: plan.stop,
    pending_restart: plan.pendingRestart,
  };
}

/**
 * What changed. `liveUplink`: the host can reconnect the uplink with new settings; otherwise an
 * uplink change takes effect at the next agent start (listed in `pendingRestart`).
 */
export function planChanges(prev: Config, next: Config, liveUplink = true): ApplyPlan {
  const drivers = diffById(prev.drivers, next.drivers);
  const ids = (kind: IdChange["kind"]) => drivers.filter((c) => c.kind === kind).map((c) => c.id);
  const plan: ApplyPlan = {
    start: ids("added"),
    stop: ids("removed"),
    restart: ids("changed"),
    uplink: false,
    pendingRestart: [],
  };
  const uplinkChanged = canonicalJson(prev.uplink) !== canonicalJson(next.uplink);
  if (liveUplink) plan.uplink = uplinkChanged;
  else if (uplinkChanged) plan.pendingRestart.push("uplink");
  for (const key of ["log", "store", "commands", "gateway", "lighting"] as const) {
    if (canonicalJson(prev[key]) !== canonicalJson(next[key])) plan.pendingRestart.push(key);
  }
  return plan;
}
