/**
 * The lighting controller: every `poll` it decides each group's level (arbiter.ts) and, when it
 * changed — or at the first tick after a start, so a restart in the middle of the night sets the
 * right level at once — writes it to every lamp of the group THROUGH THE COMMAND ROUTER
 * (who: `lighting`): allow-list, ranges, rate limit, journal and audit hold as for any caller.
 * Needs nothing from the uplink: calendars, programs and overrides are local (SQLite).
 *
 * Also: override bookkeeping (start/end events), read-back of DALI lamps after each change
 * (faults.ts), per-night burning hours and energy (energy.ts), clock trust (clock.ts).
 */
import type { Logger } from "pino";
import type { LightingConfig, LightingGroup } from "../../config/lighting.js";
import type { DeviceInfo, DriverEvent, Reading } from "../../drivers/driver.js";
import type { StoredRecord } from "../store/records.js";
import type { WriteCommand, WriteOutcome } from "../commands/router.js";
import {
  type ClockView,
  type Decision,
  type Override,
  type Sensors,
  decide,
  overrideEnded,
} from "./arbiter.js";
import { ClockGuard, type ClockSource } from "./clock.js";
import type { GroupState, LightingDb } from "./db.js";
import { EnergyMeter } from "./energy.js";
import { FaultWatch } from "./faults.js";
import { type Sky, programAt } from "./plan.js";

export interface LightingTarget {
  inventory(): readonly DeviceInfo[];
  read(device: string, points?: readonly string[]): Promise<Reading[]>;
}

export interface LightingDeps {
  db: LightingDb;
  router: { write(cmd: WriteCommand, who: "lighting"): Promise<WriteOutcome> };
  target: LightingTarget;
  /** Upstream events (the store's top priority). */
  event: (e: DriverEvent) => void;
  /** Telemetry (the pipeline). */
  emit: (readings: Reading[]) => void;
  /** Committed readings, for sensor rules and metering points. */
  onRecord: (listener: (records: readonly StoredRecord[]) => void) => () => void;
  clock: ClockSource;
  logger: Logger;
}

export interface GroupView {
  id: string;
  level: number | null;
  decision: Decision;
  override: Override | null;
  lastWriteOk: boolean | null;
}

export class LightingController {
  private cfg: LightingConfig;
  private sky: Sky;
  private guard: ClockGuard;
  private overrides: Map<string, Override>;
  private readonly applied = new Set<string>();
  private readonly lastOk = new Map<string, boolean>();
  private readonly decisions = new Map<string, Decision>();
  private readonly latest = new Map<
    string,
    { value: Reading["value"]; ts: number; unit?: string | undefined }
  >();
  private readonly presenceSeen = new Map<string, number>();
  private clockView: ClockView = { trusted: true, reason: "not checked yet" };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly faults: FaultWatch;
  /** Groups whose last write failed: when to try again. */
  private readonly backoff = new Map<string, { next: number; delay: number }>();
  /** Lamps whose last write failed (group|device/point). */
  private readonly failing = new Set<string>();
  private readonly energy: EnergyMeter;

  constructor(
    cfg: LightingConfig,
    location: { lat: number; lon: number },
    private readonly deps: LightingDeps,
  ) {
    this.cfg = cfg;
    this.sky = { location, timeZone: cfg.time_zone };
    this.guard = this.newGuard(cfg);
    this.overrides = deps.db.openOverrides();
    this.faults = new FaultWatch(deps.target, deps.event, deps.logger, () => this.now());
    this.energy = new EnergyMeter(deps.db, deps.emit, (p) => this.latest.get(p));
  }

  get config(): LightingConfig {
    return this.cfg;
  }

  get skyView(): Sky {
    return this.sky;
  }

  get clock(): ClockView {
    return this.clockView;
  }

  now(): number {
    return this.deps.clock.now();
  }

  start(): void {
    this.unsubscribe = this.deps.onRecord((records) => this.observe(records));
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.cfg.poll);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    await this.running;
  }

  /**
   * Take a new configuration (cmd/lighting/set): every group is written again at the next tick.
   * Returns the groups whose lamps could not all be written (empty: healthy).
   */
  async reconfigure(
    cfg: LightingConfig,
    location: { lat: number; lon: number },
  ): Promise<string[]> {
    await this.running;
    const pollChanged = cfg.poll !== this.cfg.poll;
    this.cfg = cfg;
    this.sky = { location, timeZone: cfg.time_zone };
    this.guard = this.newGuard(cfg);
    this.applied.clear();
    if (pollChanged && this.timer) {
      clearInterval(this.timer);
      this.timer = setInterval(() => void this.tick(), cfg.poll);
      this.timer.unref();
    }
    this.backoff.clear();
    await this.tick();
    return cfg.groups.filter((g) => this.lastOk.get(g.id) === false).map((g) => g.id);
  }

  override(group: string): Override | null {
    return this.overrides.get(group) ?? null;
  }

  /** Record an override (the last received wins) and apply it at once. */
  async startOverride(o: Omit<Override, "id">): Promise<Override> {
    await this.running;
    const prev = this.overrides.get(o.group);
    const rec = this.deps.db.startOverride(o);
    if (prev) this.overrideEvent("lighting_override_end", prev, "superseded by a newer override");
    this.overrides.set(o.group, rec);
    this.overrideEvent("lighting_override_start", rec, rec.reason ?? "override");
    this.backoff.clear();
    await this.tick();
    return rec;
  }

  /** End the group's override (an override without a level); the program applies again. */
  async endOverride(group: string, who: string, reason: string | null): Promise<boolean> {
    await this.running;
    const prev = this.overrides.get(group);
    if (!prev) return false;
    this.deps.db.endOverrides(group, this.now(), `ended by ${who}`);
    this.overrides.delete(group);
    this.overrideEvent(
      "lighting_override_end",
      prev,
      `ended by ${who}${reason ? ` (${reason})` : ""}`,
    );
    this.backoff.clear();
    await this.tick();
    return true;
  }

  views(): GroupView[] {
    return this.cfg.groups.map((g) => ({
      id: g.id,
      level: this.deps.db.state(g.id)?.level ?? null,
      decision: this.decisions.get(g.id) ?? this.decideNow(g, this.now()),
      override: this.overrides.get(g.id) ?? null,
      lastWriteOk: this.lastOk.get(g.id) ?? null,
    }));
  }

  /** One evaluation; ticks never overlap (a slow device write delays the next one). */
  tick(): Promise<void> {
    const run = (this.running ?? Promise.resolve()).then(() => this.evaluate());
    this.running = run.catch((err: unknown) =>
      this.deps.logger.error({ err }, "lighting evaluation failed; retried at the next poll"),
    );
    return this.running;
  }

  private newGuard(cfg: LightingConfig): ClockGuard {
    return new ClockGuard(this.deps.clock, {
      requireSync: cfg.clock.require_sync,
      maxJumpMs: cfg.clock.max_jump,
    });
  }

  private decideNow(g: LightingGroup, now: number): Decision {
    const prog = programAt(this.cfg, g, now, this.sky);
    return decide(
      this.cfg,
      g,
      prog,
      this.overrides.get(g.id),
      this.sensors(g, now),
      this.clockView,
      now,
    );
  }

  private sensors(g: LightingGroup, now: number): Sensors {
    const luxRef = g.lux ?? this.cfg.safe_state.lux;
    const lux = luxRef ? this.latest.get(`${luxRef.device}/${luxRef.point}`) : undefined;
    const safeLux = this.cfg.safe_state.lux;
    const out: Sensors = {
      lux:
        this.clockView.trusted || !safeLux
          ? lux
          : this.latest.get(`${safeLux.device}/${safeLux.point}`),
    };
    if (g.presence) {
      const key = `${g.presence.device}/${g.presence.point}`;
      const cur = this.latest.get(key);
      // A detector that keeps reporting "present" is a detection now (report-by-exception sends
      // the value once); after it clears, the hold runs from its last detection.
      out.presence = cur && truthy(cur.value) ? now : this.presenceSeen.get(key);
    }
    return out;
  }

  private observe(records: readonly StoredRecord[]): void {
    for (const r of records) {
      const x = r.reading;
      if (!x || (x.quality !== "good" && x.quality !== "uncertain")) continue;
      const key = `${x.device}/${x.point}`;
      // The lighting clock, not the reading's: the hold is measured on the clock the
      // schedule runs on (they are the same clock on a gateway; tests move this one).
      const now = this.now();
      this.latest.set(key, { value: x.value, ts: now, unit: x.unit });
      if (truthy(x.value)) this.presenceSeen.set(key, now);
    }
    // A presence detection acts at once, not at the next poll.
    if (
      records.some(
        (r) =>
          r.reading &&
          this.cfg.groups.some(
            (g) =>
              g.presence &&
              r.reading!.device === g.presence.device &&
              r.reading!.point === g.presence.point,
          ),
      )
    )
      void this.tick();
  }

  private async evaluate(): Promise<void> {
    const now = this.now();
    const view = this.guard.check();
    if (view.trusted !== this.clockView.trusted) this.clockEvent(view, now);
    this.clockView = view;
    for (const g of this.cfg.groups) {
      const prog = programAt(this.cfg, g, now, this.sky);
      const ov = this.overrides.get(g.id);
      const ended = ov ? overrideEnded(ov, prog, now) : null;
      if (ov && ended) {
        this.deps.db.endOverrides(g.id, now, ended);
        this.overrides.delete(g.id);
        this.overrideEvent("lighting_override_end", ov, ended);
      }
      const d = decide(
        this.cfg,
        g,
        prog,
        this.overrides.get(g.id),
        this.sensors(g, now),
        view,
        now,
      );
      const prev = this.deps.db.state(g.id);
      const state = this.energy.account(g, prev, now, this.sky, this.cfg.poll);
      this.decisions.set(g.id, d);
      if (this.applied.has(g.id) && state.level === d.level) {
        this.deps.db.saveState(g.id, { ...state, ts: now });
        continue;
      }
      // After a failed write (device offline), retry with a back-off up to 15 min rather than at
      // every poll: each attempt is an audited write upstream. Commands reset it (`retryNow`).
      const mono = this.deps.clock.mono();
      const wait = this.backoff.get(g.id);
      if (wait && mono < wait.next) {
        this.deps.db.saveState(g.id, { ...state, ts: now });
        continue;
      }
      const ok = await this.writeGroup(g, d);
      this.lastOk.set(g.id, ok);
      if (ok) this.backoff.delete(g.id);
      else {
        const delay = Math.min(2 * (wait?.delay ?? this.cfg.poll / 2), 15 * 60_000);
        this.backoff.set(g.id, { next: mono + delay, delay });
      }
      const next: GroupState = ok
        ? { ...state, level: d.level, source: d.source, reason: d.reason, ts: now }
        : { ...state, ts: now };
      this.deps.db.saveState(g.id, next);
      if (!ok) continue;
      const changed = state.level !== d.level || !this.applied.has(g.id);
      this.applied.add(g.id);
      if (changed) this.levelEvent(g, state.level, d, now);
      await this.faults.check(g, d.level);
    }
  }

  /** Write the level to every lamp of the group; true when every write succeeded. */
  private async writeGroup(g: LightingGroup, d: Decision): Promise<boolean> {
    const inv = this.deps.target.inventory();
    let all = true;
    for (const lamp of g.lamps) {
      const point = inv.find((x) => x.id === lamp.device)?.points.find((p) => p.id === lamp.point);
      // A relay circuit (boolean point) is on when the level is above 0.
      const value = point?.type === "boolean" ? d.level > 0 : d.level;
      const r = await this.deps.router.write(
        { device: lamp.device, values: [{ point: lamp.point, value }], verify: true },
        "lighting",
      );
      const key = `${g.id}|${lamp.device}/${lamp.point}`;
      if (r.ok) this.failing.delete(key);
      else {
        all = false;
        // One event per failure, not one per poll while it lasts (retries are logged only).
        const first = !this.failing.has(key);
        this.failing.add(key);
        this.deps.logger.warn(
          { group: g.id, device: lamp.device, point: lamp.point, error: r.error },
          "lighting write failed",
        );
        if (first)
          this.deps.event({
            ts: this.now(),
            type: "lighting_write_failed",
            severity: "error",
            device: lamp.device,
            message: `lighting: group "${g.id}" lamp ${lamp.name ?? `${lamp.device}/${lamp.point}`} could not be set to ${d.level} %: ${r.error.message} — retried at the next poll`,
            data: {
              group: g.id,
              device: lamp.device,
              point: lamp.point,
              level: d.level,
              code: r.error.code,
            },
          });
      }
    }
    return all;
  }

  private levelEvent(g: LightingGroup, from: number | null, d: Decision, now: number): void {
    const type =
      d.source === "override"
        ? "lighting_override_level"
        : d.source === "sensor"
          ? "lighting_sensor_change"
          : d.source === "safe"
            ? "lighting_safe_state"
            : "lighting_program_change";
    this.deps.event({
      ts: now,
      type,
      severity: d.source === "safe" ? "warning" : "info",
      message: `lighting: group "${g.id}" ${from ?? "?"} → ${d.level} %: ${d.reason}`,
      data: {
        group: g.id,
        from,
        to: d.level,
        source: d.source,
        reason: d.reason,
        program: d.program,
      },
    });
  }

  private overrideEvent(type: string, o: Override, reason: string): void {
    this.deps.event({
      ts: this.now(),
      type,
      severity: "info",
      message: `lighting: override of group "${o.group}" at ${o.level} % by ${o.who} ${type.endsWith("start") ? "started" : `ended: ${reason}`}`,
      data: {
        group: o.group,
        level: o.level,
        who: o.who,
        reason,
        start: o.start,
        expires: o.expires,
        until_next_event: o.untilNextEvent,
        ...(o.commandId ? { command_id: o.commandId } : {}),
      },
    });
  }

  private clockEvent(view: ClockView, now: number): void {
    this.deps.event({
      ts: now,
      type: view.trusted ? "lighting_clock_trusted" : "lighting_clock_untrusted",
      severity: view.trusted ? "info" : "error",
      message: view.trusted
        ? "lighting: the clock is trusted again, the schedule applies"
        : `lighting: the clock is not trusted (${view.reason}) — lamps in the safe state`,
      data: { reason: view.reason },
    });
  }
}

function truthy(v: Reading["value"]): boolean {
  return v === true || (typeof v === "number" && v > 0);
}
