/**
 * The TIC driver: listens to a Linky/CBE "téléinformation client" line and pushes a reading for
 * each label of every valid frame (the pipeline's deadband/max_interval decides what is sent).
 * Historic (1200 7E1) or standard (9600 7E1) mode, configured or detected: in `auto` the driver
 * switches speed whenever `no_frame_timeout` passes without a valid frame.
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type {
  DeviceInfo,
  DeviceStatus,
  Driver,
  DriverContext,
  DriverStatus,
  PointInfo,
  Reading,
  WriteRequest,
  WriteResult,
} from "../driver.js";
import { ReconnectingPort, type SerialFactory, describeSerial } from "../serial/port.js";
import { type TicFrame, type TicMode, TicStreamParser } from "./frame.js";
import { decodeGroup, knownLabels, pointId } from "./labels.js";
import type { TicDriverConfig } from "./schema.js";

const baudOf: Record<TicMode, number> = { historic: 1200, standard: 9600 };
const other: Record<TicMode, TicMode> = { historic: "standard", standard: "historic" };

export class TicDriver implements Driver {
  readonly kind = "tic";
  private readonly port: ReconnectingPort;
  private readonly parser: TicStreamParser;
  private readonly device: TicDriverConfig["devices"][number];
  private readonly status_: DeviceStatus;
  private running = false;
  private speedMode: TicMode;
  private watchdog: NodeJS.Timeout | undefined;
  /** Start of the current listening window (port open or last speed switch). */
  private windowStart = 0;
  private lastValidFrameTs = 0;
  private diagnosed = false;
  private diagnosis: string | undefined;
  /** When each cause of a bad line was last reported (cleared by a valid frame). */
  private readonly reportedAt = new Map<"silence" | "garbage", number>();
  /** device_offline sent and no device_online since. */
  private offlineReported = false;
  private bytesInWindow = 0;
  private readonly latest = new Map<string, Reading>();
  private meterId: string | undefined;
  private frameMode: TicMode | undefined;
  private mismatchReported = false;
  private modeWarned = false;
  private readonly counters = {
    validFrames: 0,
    rejectedFrames: 0,
    droppedGroups: 0,
    /** Checksum-valid groups whose label the mode does not have: counted, never published. */
    unknownLabels: 0,
    readings: 0,
    speedSwitches: 0,
  };

  constructor(
    private readonly cfg: TicDriverConfig,
    private readonly ctx: DriverContext,
    factory?: SerialFactory,
  ) {
    this.device = cfg.devices[0]!;
    this.status_ = { id: this.device.id, online: false, errorCount: 0 };
    this.speedMode = cfg.mode === "standard" ? "standard" : "historic";
    this.parser = new TicStreamParser((f) => this.onFrame(f));
    this.port = new ReconnectingPort(
      {
        path: cfg.path,
        baudRate: baudOf[this.speedMode],
        dataBits: 7,
        parity: "even",
        stopBits: 1,
      },
      {
        ...(factory ? { factory } : {}),
        minDelayMs: cfg.reconnect_min,
        maxDelayMs: cfg.reconnect_max,
        onData: (c) => {
          this.bytesInWindow += c.length;
          this.parser.feed(c);
        },
        onState: (state, detail) => {
          ctx.logger.info({ state }, detail);
          if (state === "open") this.restartWindow();
          if (state === "waiting") {
            // The port's problem is the meter's: the health model (agent/health/) reads a driver
            // whose every device is offline with an error as failed.
            this.goOffline(detail);
            ctx.event({
              ts: Date.now(),
              type: "port_unavailable",
              severity: "warning",
              device: this.device.id,
              message: detail,
              data: { path: cfg.path },
            });
          }
          if (state === "open" && this.port.openCount > 1 && this.port.lostCount > 0)
            ctx.event({
              ts: Date.now(),
              type: "port_restored",
              severity: "info",
              device: this.device.id,
              message: detail,
              data: { path: cfg.path },
            });
        },
      },
    );
  }

  get id(): string {
    return this.cfg.id;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.device.enabled) this.port.start();
    this.watchdog = setInterval(
      () => void this.checkLine(),
      Math.min(1000, this.cfg.no_frame_timeout / 4),
    );
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.watchdog);
    await this.port.stop();
  }

  private restartWindow(): void {
    this.windowStart = Date.now();
    this.bytesInWindow = 0;
  }

  /** The diagnostic a technician needs when the line gives nothing usable. */
  private async checkLine(): Promise<void> {
    if (!this.running || !this.port.isOpen) return;
    const now = Date.now();
    const since = Math.max(this.lastValidFrameTs, this.windowStart);
    if (now - since < this.cfg.no_frame_timeout) return;
    const secs = Math.round(this.cfg.no_frame_timeout / 1000);
    const speed = describeSerial(this.port.options);
    const hint =
      this.speedMode === "historic"
        ? "is the meter in standard mode (9600)?"
        : "is the meter in historic mode (1200)?";
    const heard =
      this.bytesInWindow > 0
        ? ` (${this.bytesInWindow} bytes received, ${this.parser.counters.droppedGroups} groups failed their checksum or format)`
        : " (no bytes received: check the wiring and that the TIC output is enabled)";
    const msg = `no valid TIC frame in ${secs} s at ${speed} — ${hint}${heard}`;
    this.diagnosis = msg;
    this.goOffline(msg);
    // One event per cause (silence, garbage), repeated at most every `no_frame_repeat` while it
    // lasts: auto mode diagnoses at each speed switch, an unplugged adapter would otherwise send
    // one event every timeout, forever (issue 17.3).
    const kind = this.bytesInWindow > 0 ? "garbage" : "silence";
    const last = this.reportedAt.get(kind);
    if (last === undefined || now - last >= this.cfg.no_frame_repeat) {
      this.reportedAt.set(kind, now);
      this.ctx.event({
        ts: now,
        type: "tic_no_valid_frame",
        severity: "warning",
        device: this.device.id,
        message: msg,
        data: { path: this.cfg.path, baud: this.port.options.baudRate, bytes: this.bytesInWindow },
      });
      this.ctx.logger.warn({ path: this.cfg.path }, msg);
    }
    this.diagnosed = true;
    if (this.cfg.mode === "auto") {
      this.speedMode = other[this.speedMode];
      this.counters.speedSwitches++;
      this.ctx.logger.info(
        `TIC auto mode: trying ${this.speedMode} (${baudOf[this.speedMode]} baud)`,
      );
      await this.port.reconfigure({ baudRate: baudOf[this.speedMode] });
    } else this.restartWindow();
  }

  /** The meter stopped being heard (line diagnosed, port lost): device_offline once. */
  private goOffline(why: string): void {
    this.status_.online = false;
    if (this.offlineReported) return;
    this.offlineReported = true;
    this.status_.errorCount++;
    this.status_.lastError = why;
    this.ctx.event({
      ts: Date.now(),
      type: "device_offline",
      severity: "warning",
      device: this.device.id,
      message: why,
    });
  }

  private onFrame(f: TicFrame): void {
    const ts = Date.now();
    this.counters.droppedGroups += f.dropped;
    if (f.dropped > 0)
      this.ctx.logger.debug({ errors: f.errors }, `TIC frame: ${f.dropped} group(s) dropped`);
    const decoded = f.groups.map((g) => decodeGroup(f.mode, g));
    const good = decoded.flatMap((d) => (d.ok ? [d.decoded] : []));
    const unknown = decoded.filter((d) => !d.ok && d.unknown).length;
    this.counters.unknownLabels += unknown;
    this.counters.droppedGroups += decoded.length - good.length - unknown;
    if (good.length === 0) {
      this.counters.rejectedFrames++;
      return;
    }
    const ident = good.find((g) => g.label === (f.mode === "historic" ? "ADCO" : "ADSC"));
    if (ident) this.meterId = String(ident.value);
    if (this.device.meter_id && this.meterId && this.meterId !== this.device.meter_id) {
      if (!this.mismatchReported) {
        this.mismatchReported = true;
        this.ctx.event({
          ts,
          type: "tic_meter_mismatch",
          severity: "error",
          device: this.device.id,
          message: `meter ${this.meterId} on ${this.cfg.path} is not the configured meter ${this.device.meter_id}: its frames are ignored`,
        });
      }
      this.counters.rejectedFrames++;
      return;
    }
    if (this.cfg.mode !== "auto" && f.mode !== this.cfg.mode && !this.modeWarned) {
      this.modeWarned = true;
      this.ctx.event({
        ts,
        type: "tic_mode_mismatch",
        severity: "warning",
        device: this.device.id,
        message: `the meter sends ${f.mode}-mode frames but the driver is configured for ${this.cfg.mode} mode`,
      });
    }
    this.counters.validFrames++;
    this.frameMode = f.mode;
    this.lastValidFrameTs = ts;
    this.reportedAt.clear();
    this.bytesInWindow = 0; // what counts for a diagnosis is what came after the last good frame
    if (this.diagnosed) {
      this.diagnosed = false;
      this.diagnosis = undefined;
      this.ctx.event({
        ts,
        type: "tic_line_ok",
        severity: "info",
        device: this.device.id,
        message: `valid ${f.mode}-mode TIC frames at ${describeSerial(this.port.options)}`,
      });
    }
    if (!this.status_.online)
      this.ctx.event({
        ts,
        type: "device_online",
        severity: "info",
        device: this.device.id,
        message: `TIC meter ${this.meterId ?? "?"} (${f.mode} mode) is sending`,
      });
    this.status_.online = true;
    this.offlineReported = false;
    this.status_.lastGoodTs = ts;
    // A horodate with a space as season carries none (Enedis-NOI-CPT_54E §6.2.3.4); the clock is
    // only in doubt when no date of the frame has a season either.
    const seasonKnown = good.some((g) => g.time !== undefined && !g.noSeason);

    const wanted =
      this.device.points.length > 0
        ? new Map(this.device.points.map((p) => [p.label, p]))
        : undefined;
    const readings: Reading[] = [];
    for (const g of good) {
      const p = wanted?.get(g.label);
      if (wanted && !p) continue;
      const degraded = g.degradedClock === true && !(g.noSeason && seasonKnown);
      const r: Reading = {
        device: this.device.id,
        point: p?.id ?? g.point,
        ts,
        value: g.value,
        ...((p?.unit ?? g.unit) ? { unit: p?.unit ?? g.unit } : {}),
        quality: degraded ? "uncertain" : "good",
        ...(degraded
          ? { detail: "the meter flags its clock as degraded (lower-case season letter)" }
          : {}),
      };
      readings.push(r);
      this.latest.set(r.point, r);
      if (g.time && g.label !== "DATE") {
        const t: Reading = {
          device: this.device.id,
          point: `${r.point}_time`,
          ts,
          value: g.time,
          quality: r.quality,
          ...(r.detail ? { detail: r.detail } : {}),
        };
        if (!wanted) {
          readings.push(t);
          this.latest.set(t.point, t);
        }
      }
    }
    this.counters.readings += readings.length;
    this.ctx.emit(readings);
  }

  inventory(): DeviceInfo[] {
    const mode: TicMode =
      this.frameMode ?? (this.cfg.mode === "standard" ? "standard" : "historic");
    const points: PointInfo[] =
      this.device.points.length > 0
        ? this.device.points.map((p) => {
            const def = knownLabels(mode)[p.label] ?? knownLabels(other[mode])[p.label];
            const unit = p.unit ?? def?.unit;
            return {
              id: p.id,
              type: def?.type ?? "string",
              writable: false,
              ...(unit ? { unit } : {}),
              description: p.description ?? def?.description ?? `TIC label ${p.label}`,
            };
          })
        : Object.entries(knownLabels(mode)).map(([label, def]) => ({
            id: pointId(label),
            type: def.type,
            writable: false,
            ...(def.unit ? { unit: def.unit } : {}),
            description: def.description,
          }));
    return [
      {
        id: this.device.id,
        driver: this.cfg.id,
        kind: "tic",
        ...(this.device.name ? { name: this.device.name } : {}),
        points,
      },
    ];
  }

  status(): DriverStatus {
    const meter = this.meterId ? `; meter ${this.meterId} in ${this.frameMode} mode` : "";
    return {
      id: this.cfg.id,
      kind: "tic",
      running: this.running,
      detail: this.diagnosis ?? `${this.port.detail}${meter}`,
      devices: [{ ...this.status_ }],
      counters: {
        // The driver's droppedGroups adds the groups refused by label checks to the parser's.
        ...this.parser.counters,
        ...this.counters,
        portOpens: this.port.openCount,
        portLosses: this.port.lostCount,
      },
    };
  }

  /** The TIC streams: a read returns the latest value of each point (from the last valid frame). */
  async read(device: string, points?: readonly string[]): Promise<Reading[]> {
    if (device !== this.device.id)
      throw new EdgeError(
        ErrorCode.DeviceUnknown,
        `device "${device}" is not on TIC driver "${this.cfg.id}"`,
        { device },
      );
    const stale = Date.now() - this.lastValidFrameTs > this.cfg.no_frame_timeout;
    const ids = points?.length ? points : [...this.latest.keys()];
    return ids.map((id): Reading => {
      const r = this.latest.get(id);
      if (!r)
        return {
          device,
          point: id,
          ts: Date.now(),
          value: null,
          quality: "timeout",
          detail: this.diagnosis ?? "no valid frame has carried this label yet",
        };
      return stale
        ? {
            ...r,
            quality: "uncertain",
            detail: `last valid frame ${Math.round((Date.now() - this.lastValidFrameTs) / 1000)} s ago`,
          }
        : r;
    });
  }

  async write(request: WriteRequest): Promise<WriteResult> {
    return {
      ok: false,
      detail: `the TIC is a one-way output of the meter: nothing can be written (${request.device}/${request.point})`,
    };
  }
}

export function createTicDriver(config: TicDriverConfig, ctx: DriverContext): Driver {
  return new TicDriver(config, ctx);
}
