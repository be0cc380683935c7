/**
 * The lighting commands (`cmd/lighting/get|set|override`, also from the local CLI through the
 * control socket) and the lighting configuration in force:
 *
 *   A block set from the hypervisor (`lighting/set`) stays in force across restarts as long as
 *   the local file's `lighting:` block is the one that was in force when it was set (same hash);
 *   when a technician edits the block in the file, the file wins again — the rule of config/set
 *   (agent/commands/config-versions.ts). Versions are kept in `lighting_versions`.
 *
 * `lighting/set` validates (every problem with its path, nothing changed), applies at once and
 * rolls back to the previous block when a lamp of the new one cannot be written.
 */
import { createHash } from "node:crypto";
import type { Database } from "better-sqlite3";
import type { Logger } from "pino";
import { canonicalJson } from "../../config/canonical.js";
import { formatIssues } from "../../config/issues.js";
import { type LightingConfig, lightingConfigSchema } from "../../config/lighting.js";
import type { Config } from "../../config/schema.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type { DriverEvent, Reading } from "../../drivers/driver.js";
import type { AuditLog } from "../commands/audit.js";
import type { Journal, Who } from "../commands/journal.js";
import { type Outcome, failure } from "../commands/outcome.js";
import type { WriteCommand, WriteOutcome } from "../commands/router.js";
import type { StoredRecord } from "../store/records.js";
import { type ClockSource, systemClock } from "./clock.js";
import { type LightingTarget, LightingController } from "./controller.js";
import { LightingDb } from "./db.js";
import { nightEvents } from "./plan.js";
import { nightSun } from "./sun.js";
import { hhmm, isDate, nightOf } from "./time.js";
import type { z } from "zod";
import {
  MAX_OVERRIDE_MS,
  type lightingGetRequest,
  type lightingGetResult,
  type lightingOverrideRequest,
  type lightingOverrideResult,
  type lightingSetRequest,
  type lightingSetResult,
} from "./wire.js";

type Loc = { lat: number; lon: number };

export interface LightingServiceOptions {
  db: Database;
  config: Config;
  /** The raw `lighting:` block of the local file (before defaults), or undefined. */
  fileBlock: unknown;
  router: { write(cmd: WriteCommand, who: "lighting"): Promise<WriteOutcome> };
  target: LightingTarget;
  journal: Journal;
  audit: AuditLog;
  event: (e: DriverEvent) => void;
  emit: (readings: Reading[]) => void;
  onRecord: (listener: (records: readonly StoredRecord[]) => void) => () => void;
  clock?: ClockSource | undefined;
  logger: Logger;
}

export class LightingService {
  private readonly db: LightingDb;
  private controller: LightingController | undefined;
  private raw: Record<string, unknown> | undefined;
  private version: number | null = null;
  private source: "file" | "remote" = "file";
  private readonly baseHash: string;
  private clock: ClockSource | undefined;

  constructor(private readonly opts: LightingServiceOptions) {
    this.db = new LightingDb(opts.db, opts.clock?.now() ?? Date.now());
    this.baseHash = createHash("sha256")
      .update(canonicalJson(opts.fileBlock ?? null))
      .digest("hex");
    const active = this.db.activeVersion();
    let cfg: LightingConfig | undefined = opts.config.lighting;
    this.raw = opts.fileBlock as Record<string, unknown> | undefined;
    if (active && active.baseHash === this.baseHash) {
      try {
        cfg = this.validate(active.config, false).cfg;
        this.raw = active.config;
        this.version = active.version;
        this.source = "remote";
        opts.logger.info(
          { version: active.version },
          "lighting: the block set by the hypervisor is in force",
        );
      } catch (err) {
        opts.logger.error(
          { err },
          "lighting: the stored block no longer validates; the file's block applies",
        );
      }
    }
    if (cfg?.enabled) this.controller = this.newController(cfg);
  }

  private get clockSource(): ClockSource {
    this.clock ??=
      this.opts.clock ??
      systemClock(
        this.opts.config.lighting?.clock.sync_file ?? "/run/systemd/timesync/synchronized",
      );
    return this.clock;
  }

  private newController(cfg: LightingConfig): LightingController {
    const o = this.opts;
    return new LightingController(cfg, this.location(cfg), {
      db: this.db,
      router: o.router,
      target: o.target,
      event: o.event,
      emit: o.emit,
      onRecord: o.onRecord,
      clock: this.clockSource,
      logger: o.logger.child({ component: "lighting" }),
    });
  }

  private location(cfg: LightingConfig): Loc {
    // config/schema.ts requires one of the two.
    return (cfg.location ?? this.opts.config.gateway.location)!;
  }

  start(): void {
    this.controller?.start();
  }

  async stop(): Promise<void> {
    await this.controller?.stop();
  }

  /** For tests and the CLI: the running controller. */
  get running(): LightingController | undefined {
    return this.controller;
  }

  /** Validate a raw block: the schema's problems with paths, then references to devices. */
  validate(raw: unknown, checkRefs = true): { cfg: LightingConfig; location: Loc } {
    const parsed = lightingConfigSchema.safeParse(raw, { reportInput: true });
    const problems = parsed.success
      ? []
      : formatIssues(parsed.error.issues).map((p) => ({
          path: p.path === "(root)" ? "lighting" : `lighting.${p.path}`,
          message: p.message,
        }));
    if (parsed.success) {
      const cfg = parsed.data;
      if (!cfg.location && !this.opts.config.gateway.location)
        problems.push({
          path: "lighting.location",
          message: "missing: give lighting.location or gateway.location {lat, lon} (sun times)",
        });
      if (checkRefs) problems.push(...this.refProblems(cfg));
    }
    if (problems.length > 0 || !parsed.success)
      throw new EdgeError(
        ErrorCode.ConfigInvalid,
        `lighting: ${problems.length} problem${problems.length === 1 ? "" : "s"}, nothing changed:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`,
        { problems },
      );
    return {
      cfg: parsed.data,
      location: (parsed.data.location ?? this.opts.config.gateway.location)!,
    };
  }

  /** Every lamp must be a writable point, every sensor a point, of a configured device. */
  private refProblems(cfg: LightingConfig): { path: string; message: string }[] {
    const inv = this.opts.target.inventory();
    const out: { path: string; message: string }[] = [];
    const check = (path: string, ref: { device: string; point: string }, writable: boolean) => {
      const dev = inv.find((d) => d.id === ref.device);
      if (!dev)
        return out.push({ path: `${path}.device`, message: `unknown device "${ref.device}"` });
      const p = dev.points.find((x) => x.id === ref.point);
      if (!p)
        return out.push({
          path: `${path}.point`,
          message: `device "${ref.device}" has no point "${ref.point}"`,
        });
      if (writable && !p.writable)
        out.push({
          path: `${path}.point`,
          message: `point "${ref.device}/${ref.point}" is not writable (declare writable: true)`,
        });
      return 0;
    };
    cfg.groups.forEach((g, i) => {
      g.lamps.forEach((l, j) => {
        check(`lighting.groups[${i}].lamps[${j}]`, l, true);
        l.readback.forEach((rb, k) => {
          check(
            `lighting.groups[${i}].lamps[${j}].readback[${k}]`,
            { device: l.device, point: rb.point },
            false,
          );
          if (rb.status)
            check(
              `lighting.groups[${i}].lamps[${j}].readback[${k}].status`,
              { device: l.device, point: rb.status },
              false,
            );
        });
      });
      if (g.lux) check(`lighting.groups[${i}].lux`, g.lux, false);
      if (g.presence) check(`lighting.groups[${i}].presence`, g.presence, false);
      if (g.energy_point) check(`lighting.groups[${i}].energy_point`, g.energy_point, false);
    });
    if (cfg.safe_state.lux) check("lighting.safe_state.lux", cfg.safe_state.lux, false);
    return out;
  }

  // ---- commands ----------------------------------------------------------------------------

  get(req: z.infer<typeof lightingGetRequest>): z.infer<typeof lightingGetResult> {
    const c = this.need();
    const cfg = c.config;
    const sky = c.skyView;
    if (req.date !== undefined && !isDate(req.date))
      throw new EdgeError(
        ErrorCode.CommandInvalid,
        `date: "${req.date}" is not a calendar date (YYYY-MM-DD)`,
      );
    const night = req.date ?? nightOf(c.now(), sky.timeZone);
    const groups = cfg.groups.filter((g) => req.group === undefined || g.id === req.group);
    if (req.group !== undefined && groups.length === 0) throw this.unknownGroup(req.group, cfg);
    const views = new Map(c.views().map((v) => [v.id, v]));
    return {
      version: this.version,
      source: this.source,
      night,
      time_zone: sky.timeZone,
      sun: nightSun(night, sky.location, sky.timeZone),
      clock: c.clock,
      config: this.raw ?? {},
      groups: groups.map((g) => {
        const v = views.get(g.id)!;
        const plan = nightEvents(cfg, g, night, sky);
        return {
          id: g.id,
          level: v.level,
          source: v.decision.source,
          reason: v.decision.reason,
          program: plan[0]?.program ?? null,
          plan: plan.map((e) => ({
            ts: e.ts,
            local: hhmm(e.ts, sky.timeZone),
            level: e.level,
            ramp_s: e.rampMs / 1000,
            control: e.control,
            source: e.source,
            why: e.why,
          })),
          override: v.override && overrideView(v.override),
        };
      }),
    };
  }

  async set(
    req: z.infer<typeof lightingSetRequest>,
    who: Who,
  ): Promise<Outcome<z.infer<typeof lightingSetResult>> & { duplicate?: true }> {
    const seen = this.opts.journal.get(req.id);
    if (seen?.state === "done")
      return { ...(seen.response as Outcome<z.infer<typeof lightingSetResult>>), duplicate: true };
    let next: { cfg: LightingConfig; location: Loc };
    try {
      next = this.validate(req.lighting);
    } catch (e) {
      this.audit(who, req.id, "lighting/set", "refused", e);
      return failure(e);
    }
    const groups = next.cfg.groups.map((g) => g.id);
    if (req.dry_run) return { ok: true, result: { version: null, applied: false, groups } };
    if (!this.opts.journal.begin(req.id, "lighting/set", who, canonicalJson(req.lighting)))
      return failure(
        new EdgeError(ErrorCode.CommandInvalid, `command id ${req.id} is already in use`),
      );
    const outcome = await this.apply(req, who, next, groups);
    this.opts.journal.finish(req.id, outcome);
    return outcome;
  }

  private async apply(
    req: z.infer<typeof lightingSetRequest>,
    who: Who,
    next: { cfg: LightingConfig; location: Loc },
    groups: string[],
  ): Promise<Outcome<z.infer<typeof lightingSetResult>>> {
    const prev = this.controller
      ? { cfg: this.controller.config, location: this.controller.skyView.location }
      : undefined;
    let failed: string[] = [];
    if (!next.cfg.enabled) {
      await this.controller?.stop();
      this.controller = undefined;
    } else if (this.controller) failed = await this.controller.reconfigure(next.cfg, next.location);
    else {
      this.controller = this.newController(next.cfg);
      this.controller.start();
      failed = await this.controller.reconfigure(next.cfg, next.location);
    }
    const now = this.opts.clock?.now() ?? Date.now();
    if (failed.length === 0) {
      const version = this.db.addVersion({
        ts: now,
        who,
        commandId: req.id,
        baseHash: this.baseHash,
        config: req.lighting,
        status: "active",
        detail: null,
      });
      this.raw = req.lighting;
      this.version = version;
      this.source = "remote";
      this.audit(who, req.id, "lighting/set", "ok", undefined, `lighting v${version} applied`);
      return { ok: true, result: { version, applied: true, groups } };
    }
    const why = `the lamps of group${failed.length > 1 ? "s" : ""} ${failed.map((g) => `"${g}"`).join(", ")} could not be written`;
    if (prev) await this.controller!.reconfigure(prev.cfg, prev.location);
    else {
      await this.controller?.stop();
      this.controller = undefined;
    }
    const version = this.db.addVersion({
      ts: now,
      who,
      commandId: req.id,
      baseHash: this.baseHash,
      config: req.lighting,
      status: "rolled_back",
      detail: why,
    });
    const message = `the new lighting block was rolled back: ${why}`;
    this.opts.event({
      ts: now,
      type: "lighting_rolled_back",
      severity: "error",
      message: `lighting: ${message}`,
      data: { command_id: req.id, who, version, failed },
    });
    const e = new EdgeError(ErrorCode.CommandFailed, message, {
      version,
      rolled_back: true,
      failed,
    });
    this.audit(who, req.id, "lighting/set", "failed", e);
    return failure(e);
  }

  async override(
    req: z.infer<typeof lightingOverrideRequest>,
    who: Who,
  ): Promise<Outcome<z.infer<typeof lightingOverrideResult>> & { duplicate?: true }> {
    const seen = this.opts.journal.get(req.id);
    if (seen?.state === "done")
      return {
        ...(seen.response as Outcome<z.infer<typeof lightingOverrideResult>>),
        duplicate: true,
      };
    const c = this.need();
    const cfg = c.config;
    const ids = req.group === "*" ? cfg.groups.map((g) => g.id) : [req.group];
    if (req.group !== "*" && !cfg.groups.some((g) => g.id === req.group))
      throw this.unknownGroup(req.group, cfg);
    const now = c.now();
    if (req.until !== undefined && (req.until <= now || req.until > now + MAX_OVERRIDE_MS))
      throw new EdgeError(
        ErrorCode.CommandInvalid,
        `until: ${new Date(req.until).toISOString()} is ${req.until <= now ? "in the past" : "more than 7 days ahead"} (gateway time ${new Date(now).toISOString()})`,
      );
    if (!this.opts.journal.begin(req.id, "lighting/override", who, canonicalJson(req)))
      return failure(
        new EdgeError(ErrorCode.CommandInvalid, `command id ${req.id} is already in use`),
      );
    for (const group of ids) {
      if (req.level === undefined) await c.endOverride(group, who, req.reason ?? null);
      else
        await c.startOverride({
          group,
          level: req.level,
          start: now,
          expires: req.for !== undefined ? now + req.for : (req.until ?? null),
          untilNextEvent: req.until_next_event === true,
          who,
          commandId: req.id,
          reason: req.reason ?? null,
        });
    }
    const views = new Map(c.views().map((v) => [v.id, v]));
    const outcome: Outcome<z.infer<typeof lightingOverrideResult>> = {
      ok: true,
      result: {
        groups: ids.map((id) => {
          const v = views.get(id)!;
          return { id, level: v.level, override: v.override && overrideView(v.override) };
        }),
      },
    };
    this.opts.journal.finish(req.id, outcome);
    this.audit(
      who,
      req.id,
      "lighting/override",
      "ok",
      undefined,
      req.level === undefined
        ? `override of ${req.group} ended`
        : `override of ${req.group} at ${req.level} %`,
    );
    return outcome;
  }

  private need(): LightingController {
    if (!this.controller)
      throw new EdgeError(
        ErrorCode.CommandRefused,
        "lighting is not configured (or disabled) on this gateway — send a lighting block with lighting/set",
      );
    return this.controller;
  }

  private unknownGroup(id: string, cfg: LightingConfig): EdgeError {
    return new EdgeError(
      ErrorCode.CommandInvalid,
      `unknown lighting group "${id}" (groups: ${cfg.groups.map((g) => g.id).join(", ") || "none"})`,
      { group: id },
    );
  }

  private audit(
    who: Who,
    id: string,
    command: string,
    outcome: "ok" | "refused" | "failed",
    e?: unknown,
    message?: string,
  ): void {
    const err = e === undefined ? undefined : failure(e).error;
    this.opts.audit.record({
      ts: this.opts.clock?.now() ?? Date.now(),
      who,
      commandId: id,
      command,
      outcome,
      ...(err ? { code: err.code, message: err.message.split("\n")[0] } : {}),
      ...(message ? { message } : {}),
    });
  }
}

function overrideView(o: {
  level: number;
  start: number;
  expires: number | null;
  untilNextEvent: boolean;
  who: string;
  reason: string | null;
}) {
  return {
    level: o.level,
    start: o.start,
    expires: o.expires,
    until_next_event: o.untilNextEvent,
    who: o.who,
    reason: o.reason,
  };
}
