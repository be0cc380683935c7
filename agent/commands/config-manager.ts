/**
 * Remote configuration (`config/set`): validate with the same schema as the file (every problem
 * with its path, nothing changed), stage, apply by touching only what changed (drivers, or only
 * the changed devices of a driver that can update in place; the uplink's connection), and roll
 * back automatically unless the new configuration is healthy (changed drivers running, uplink
 * connected) within `commands.rollback_window`. Versions go to SQLite with who and when; a
 * repeated command id returns the stored response (journal). Plan and result: config-plan.ts.
 */
import type { Logger } from "pino";
import type { RefContext } from "../../config/refs.js";
import type { DriverEvent } from "../../drivers/driver.js";
import { validateRemoteConfig } from "../../config/load.js";
import type { Config } from "../../config/schema.js";
import { EdgeError, ErrorCode, isEdgeError } from "../../core/errors.js";
import type { AuditLog } from "./audit.js";
import { canonicalJson } from "../../config/canonical.js";
import {
  type ApplyPlan,
  type ApplyReport,
  type ConfigHost,
  type SetResult,
  planChanges,
  setResult,
} from "./config-plan.js";
import type { ConfigVersions } from "./config-versions.js";
import type { Journal, Who } from "./journal.js";
import { type Outcome, errorBody, failure } from "./outcome.js";
import { redactSecrets, restoreRedacted } from "./redact.js";

export interface ConfigManagerOptions {
  host: ConfigHost;
  versions: ConfigVersions;
  journal: Journal;
  audit: AuditLog;
  refs: RefContext;
  /** Hash of the local file in force (precedence, see config-versions.ts). */
  fileHash: () => string | null;
  filePath: string | null;
  rollbackWindowMs: number;
  remoteAllowed: boolean;
  logger: Logger;
  pollMs?: number;
  /** The host reconnects the uplink with new settings (else uplink changes wait for a restart). */
  liveUplink?: boolean;
  /** Upstream events (the store's top priority): a rollback is announced as `config_rolled_back`. */
  event?: (e: DriverEvent) => void;
}

export interface ConfigGetResult {
  version: number | null;
  source: "file" | "remote";
  who: string | null;
  ts: number | null;
  file: string | null;
  config: Record<string, unknown>;
}

/** Settings a remote configuration may not change: they belong to the box, not the territory. */
const LOCAL_ONLY: readonly (readonly string[])[] = [
  ["gateway", "id"],
  ["state_dir"],
  ["store", "path"],
  ["control", "socket"],
  // The secrets the box exports (issue 14.1): compared raw, never shown.
  ["secrets"],
  // The broker identity is the certificate's (issue 14.2), not the territory's to change.
  ["uplink", "client_id"],
];

export class ConfigManager {
  private busy = false;
  private raw: Record<string, unknown>;

  constructor(
    private readonly opts: ConfigManagerOptions,
    initialRaw: Record<string, unknown>,
  ) {
    this.raw = initialRaw;
  }

  get(): ConfigGetResult {
    const v = this.opts.versions.active();
    return {
      version: v?.version ?? null,
      source: v?.source ?? "file",
      who: v?.who ?? null,
      ts: v?.ts ?? null,
      file: this.opts.filePath,
      config: redactSecrets(this.raw) as Record<string, unknown>,
    };
  }

  async set(
    rawIn: Record<string, unknown>,
    o: { who: Who; commandId: string; dryRun: boolean },
  ): Promise<Outcome<SetResult> & { duplicate?: true }> {
    const seen = this.opts.journal.get(o.commandId);
    if (seen) {
      if (seen.state === "pending")
        return failure(
          new EdgeError(
            ErrorCode.CommandFailed,
            `config/set ${o.commandId} was being applied when the agent stopped; it is not applied again — check config/get and send a new id`,
          ),
        );
      return { ...(seen.response as Outcome<SetResult>), duplicate: true };
    }
    if (!this.opts.remoteAllowed && o.who === "hypervisor") {
      return this.refuse(
        o,
        new EdgeError(
          ErrorCode.CommandRefused,
          "remote configuration is disabled on this gateway (commands.remote_config: false)",
        ),
      );
    }
    if (this.busy)
      return failure(
        new EdgeError(
          ErrorCode.CommandRefused,
          "another configuration is being applied — retry when it is done",
        ),
      );
    const raw = withLocalOnly(
      restoreRedacted(rawIn, this.raw) as Record<string, unknown>,
      this.raw,
    );
    const prev = this.opts.host.current();
    let next: Config;
    try {
      next = this.validate(raw, prev);
    } catch (e) {
      return this.refuse(o, e);
    }
    const plan = planChanges(prev, next, this.opts.liveUplink ?? false);
    // A dry run cannot know which drivers would take their change in place: all are "restarted".
    if (o.dryRun) return { ok: true, result: setResult(plan, undefined, null, false) };
    this.busy = true;
    this.opts.journal.begin(o.commandId, "config/set", o.who, canonicalJson(raw));
    try {
      const outcome = await this.applyWithRollback(raw, prev, next, plan, o);
      this.opts.journal.finish(o.commandId, outcome);
      return outcome;
    } finally {
      this.busy = false;
    }
  }

  private validate(raw: Record<string, unknown>, prev: Config): Config {
    let problems: { path: string; message: string }[] = [];
    let next: Config | undefined;
    try {
      // Plain data: no file:/${} of its own, secrets by name only (config/remote-refs.ts).
      next = validateRemoteConfig(raw, "config/set", {
        current: this.raw,
        secrets: prev.secrets,
        local: this.opts.refs,
      });
    } catch (e) {
      if (!isEdgeError(e)) throw e;
      problems = (
        (e.details?.problems as typeof problems | undefined) ?? [
          { path: "(root)", message: e.text },
        ]
      ).slice();
    }
    // Local-only settings are compared on the raw input too, so they are reported with the
    // schema problems (all at once) even when the rest is invalid.
    for (const path of LOCAL_ONLY) {
      const secret = path[0] === "secrets";
      const want = dig(raw, path);
      // Secrets compared in their raw form (references), the others as resolved.
      const have = dig(secret ? this.raw : prev, path);
      // Unset on the box and set remotely is a change too (a store.path would move the store).
      if (
        want !== undefined &&
        (have === undefined || canonicalJson(want) !== canonicalJson(have))
      ) {
        const shown = JSON.stringify(have);
        problems.push({
          path: path.join("."),
          message: `cannot be changed remotely${secret ? "" : ` (it is ${have === undefined ? "not set" : shown.length > 80 ? `${shown.slice(0, 80)}…` : shown} on this box)`} — change it in the local file`,
        });
      }
    }
    if (problems.length > 0 || !next) {
      throw new EdgeError(
        ErrorCode.ConfigInvalid,
        `config/set: ${problems.length} problem${problems.length === 1 ? "" : "s"}, nothing changed:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`,
        { problems },
      );
    }
    return next;
  }

  private refuse(
    o: { who: Who; commandId: string },
    e: unknown,
  ): { ok: false; error: ReturnType<typeof errorBody> } {
    const err = errorBody(e);
    this.opts.audit.record({
      ts: Date.now(),
      who: o.who,
      commandId: o.commandId,
      command: "config/set",
      outcome: "refused",
      code: err.code,
      message: err.message.split("\n")[0],
    });
    return { ok: false, error: err };
  }

  private async applyWithRollback(
    raw: Record<string, unknown>,
    prev: Config,
    next: Config,
    plan: ApplyPlan,
    o: { who: Who; commandId: string },
  ): Promise<Outcome<SetResult>> {
    const log = this.opts.logger;
    log.info({ plan, who: o.who, command_id: o.commandId }, "applying a new configuration");
    const { problem: unhealthy, report } = await this.applyAndWait(next, plan);
    if (!unhealthy) {
      const version = this.opts.versions.add({
        ts: Date.now(),
        who: o.who,
        source: "remote",
        commandId: o.commandId,
        fileHash: this.opts.fileHash(),
        config: raw,
        status: "active",
        detail: null,
      });
      this.raw = raw;
      this.opts.audit.record({
        ts: Date.now(),
        who: o.who,
        commandId: o.commandId,
        command: "config/set",
        outcome: "ok",
        message: `configuration v${version} applied`,
      });
      return { ok: true, result: setResult(plan, report, version, true) };
    }
    log.warn({ problem: unhealthy }, "the new configuration is not healthy: rolling back");
    const back: ApplyPlan = {
      start: plan.stop,
      stop: plan.start,
      restart: plan.restart,
      uplink: plan.uplink,
      pendingRestart: [],
    };
    const { problem: stillBad } = await this.applyAndWait(prev, back);
    const version = this.opts.versions.add({
      ts: Date.now(),
      who: o.who,
      source: "remote",
      commandId: o.commandId,
      fileHash: this.opts.fileHash(),
      config: raw,
      status: "rolled_back",
      detail: unhealthy,
    });
    const message = `the new configuration was rolled back: ${unhealthy}${stillBad ? `; after the rollback: ${stillBad}` : ""}`;
    this.opts.audit.record({
      ts: Date.now(),
      who: o.who,
      commandId: o.commandId,
      command: "config/set",
      outcome: "failed",
      code: "CommandFailed",
      message,
    });
    this.opts.event?.({
      ts: Date.now(),
      type: "config_rolled_back",
      severity: "error",
      message,
      data: { command_id: o.commandId, who: o.who, version, rolled_back_ok: !stillBad },
    });
    return failure(
      new EdgeError(ErrorCode.CommandFailed, message, { version, rolled_back: true, plan }),
    );
  }

  /** Apply and wait for health; `problem` is undefined when healthy, else what is wrong in words. */
  private async applyAndWait(
    cfg: Config,
    plan: ApplyPlan,
  ): Promise<{ problem?: string; report?: ApplyReport }> {
    let report: ApplyReport | undefined;
    try {
      report = (await this.opts.host.apply(cfg, plan)) ?? undefined;
    } catch (e) {
      return { problem: `applying failed: ${errorBody(e).message}` };
    }
    const watched = new Set([...plan.start, ...plan.restart]);
    const deadline = Date.now() + this.opts.rollbackWindowMs;
    let problem = "";
    for (;;) {
      const h = this.opts.host.health();
      const failed = h.failed.filter((f) => watched.has(f.id));
      problem = [
        ...failed.map((f) => `driver "${f.id}" is not running (${f.reason})`),
        ...(plan.uplink && !h.uplinkConnected
          ? [
              `the uplink did not reconnect to the broker${h.uplinkError ? ` (${h.uplinkError})` : ""}`,
            ]
          : []),
      ].join("; ");
      if (!problem) return report ? { report } : {};
      if (Date.now() >= deadline)
        return { problem: `${problem} within ${windowText(this.opts.rollbackWindowMs)}` };
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 200));
    }
  }
}

/**
 * A remote configuration that leaves out a local-only setting keeps the box's value (it must not
 * fall back to the default: a missing `state_dir` would move the store to /var/lib/eclor-edge).
 */
function withLocalOnly(
  raw: Record<string, unknown>,
  current: Record<string, unknown>,
): Record<string, unknown> {
  const out = structuredClone(raw);
  paths: for (const path of LOCAL_ONLY) {
    const have = dig(current, path);
    if (have === undefined || dig(out, path) !== undefined) continue;
    let cur: Record<string, unknown> = out;
    for (const k of path.slice(0, -1)) {
      cur[k] ??= {};
      const next = cur[k];
      // Not an object: the schema reports it; nothing to fill in.
      if (next === null || typeof next !== "object" || Array.isArray(next)) continue paths;
      cur = next as Record<string, unknown>;
    }
    cur[path[path.length - 1]!] = structuredClone(have);
  }
  return out;
}

function windowText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function dig(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}
