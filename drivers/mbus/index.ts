/**
 * The wired M-Bus driver: one serial line (2400 8E1 by default) through a level converter, its
 * meters polled on their schedules by primary or secondary address. A bad or missing answer is
 * an error reading (quality frame_error/timeout) for the device's points, never a crash.
 */
import { EdgeError, ErrorCode, describeError, isEdgeError } from "../../core/errors.js";
import type {
  DeviceInfo,
  DeviceStatus,
  Driver,
  DriverContext,
  DriverStatus,
  PointInfo,
  Quality,
  Reading,
  WriteRequest,
  WriteResult,
} from "../driver.js";
import { ReconnectingPort, describeSerial } from "../serial/port.js";
import type { MbusData, MbusRecord } from "./data.js";
import { MbusMaster } from "./master.js";
import { autoPointIds, findRecord } from "./points.js";
import type { MbusDeviceConfig, MbusDriverConfig } from "./schema.js";

interface DeviceRuntime {
  cfg: MbusDeviceConfig;
  status: DeviceStatus;
  timer?: NodeJS.Timeout;
  /** Point ids and units seen or configured, for error readings and the inventory. */
  points: Map<string, { unit?: string; type: PointInfo["type"]; description?: string }>;
  meter?: { id: string; manufacturer: string; medium: string; version: number };
}

export class MbusDriver implements Driver {
  readonly kind = "mbus";
  private readonly port: ReconnectingPort;
  private readonly master: MbusMaster;
  private readonly devices = new Map<string, DeviceRuntime>();
  private running = false;
  private lineTimer: NodeJS.Timeout | undefined;
  private lineDiagnosed = false;
  private startedAt = 0;

  constructor(
    private readonly cfg: MbusDriverConfig,
    private readonly ctx: DriverContext,
    factory?: ConstructorParameters<typeof ReconnectingPort>[1]["factory"],
  ) {
    this.port = new ReconnectingPort(
      { path: cfg.path, baudRate: cfg.baud, dataBits: 8, parity: "even", stopBits: 1 },
      {
        ...(factory ? { factory } : {}),
        minDelayMs: cfg.reconnect_min,
        maxDelayMs: cfg.reconnect_max,
        onData: (c) => this.master.onData(c),
        onState: (state, detail) => {
          ctx.logger.info({ state }, detail);
          if (state === "waiting")
            ctx.event({
              ts: Date.now(),
              type: "port_unavailable",
              severity: "warning",
              message: detail,
              data: { path: cfg.path },
            });
          if (state === "open" && this.port.openCount > 1)
            ctx.event({
              ts: Date.now(),
              type: "port_restored",
              severity: "info",
              message: detail,
              data: { path: cfg.path },
            });
        },
      },
    );
    this.master = new MbusMaster((b) => this.port.write(b), {
      timeoutMs: cfg.timeout_ms,
      retries: cfg.retries,
    });
    for (const d of cfg.devices) {
      const points = new Map<
        string,
        { unit?: string; type: PointInfo["type"]; description?: string }
      >();
      for (const p of d.points)
        points.set(p.id, {
          ...(p.unit ? { unit: p.unit } : {}),
          type: "number",
          ...(p.description ? { description: p.description } : {}),
        });
      this.devices.set(d.id, {
        cfg: d,
        points,
        status: { id: d.id, online: false, errorCount: 0 },
      });
    }
  }

  get id(): string {
    return this.cfg.id;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.startedAt = Date.now();
    this.port.start();
    for (const d of this.devices.values()) {
      if (!d.cfg.enabled) continue;
      this.schedule(d, 0);
    }
    this.lineTimer = setInterval(() => this.checkLine(), 1000);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const d of this.devices.values()) clearTimeout(d.timer);
    clearInterval(this.lineTimer);
    this.master.close();
    await this.port.stop();
  }

  private schedule(d: DeviceRuntime, delay: number): void {
    d.timer = setTimeout(() => {
      if (!this.running) return;
      void this.poll(d).finally(() => {
        if (this.running) this.schedule(d, d.cfg.poll_interval ?? this.cfg.poll_interval);
      });
    }, delay);
  }

  /** No valid frame for `no_frame_timeout` while polling: say what to check. */
  private checkLine(): void {
    const since = Math.max(this.master.lastGoodFrameTs, this.startedAt);
    const silent =
      Date.now() - since > this.cfg.no_frame_timeout && this.master.counters.requests > 0;
    if (silent && !this.lineDiagnosed) {
      this.lineDiagnosed = true;
      const msg = `no valid M-Bus frame in ${Math.round(this.cfg.no_frame_timeout / 1000)} s at ${describeSerial(this.port.options)} — check the level converter power, the baud rate (${this.cfg.baud}) and the meter addresses`;
      this.ctx.event({
        ts: Date.now(),
        type: "mbus_no_valid_frame",
        severity: "warning",
        message: msg,
        data: { path: this.cfg.path, ...this.master.counters },
      });
    } else if (!silent && this.lineDiagnosed) {
      this.lineDiagnosed = false;
      this.ctx.event({
        ts: Date.now(),
        type: "mbus_line_ok",
        severity: "info",
        message: `valid M-Bus frames again on ${this.cfg.path}`,
      });
    }
  }

  /** Read one meter: every telegram, by primary or secondary address. */
  private async readMeter(d: DeviceRuntime): Promise<MbusData[]> {
    if (!this.port.isOpen && !(await this.port.whenOpen(Math.min(2000, this.cfg.timeout_ms * 2)))) {
      throw new EdgeError(
        ErrorCode.PortUnavailable,
        `serial port unavailable: ${this.port.detail}`,
      );
    }
    return d.cfg.secondary !== undefined
      ? this.master.readSecondary(d.cfg.secondary, d.cfg.max_telegrams)
      : this.master.readAll(d.cfg.address!, d.cfg.max_telegrams);
  }

  private toReadings(d: DeviceRuntime, records: MbusRecord[], ts: number): Reading[] {
    const out: Reading[] = [];
    const push = (point: string, r: MbusRecord | undefined, unitOverride?: string) => {
      if (!r) {
        out.push({
          device: d.cfg.id,
          point,
          ts,
          value: null,
          quality: "codec_error",
          detail: "the meter's answer has no record for this point",
        });
        return;
      }
      const unit = unitOverride ?? r.unit;
      const q: Quality = r.error ? "codec_error" : "good";
      out.push({
        device: d.cfg.id,
        point,
        ts,
        value: r.error ? null : r.value,
        ...(unit ? { unit } : {}),
        quality: q,
        ...(r.error ? { detail: r.error } : {}),
      });
      if (!d.points.has(point))
        d.points.set(point, {
          ...(unit ? { unit } : {}),
          type: typeof r.value === "number" ? "number" : "string",
          description: r.quantity,
        });
    };
    if (d.cfg.points.length > 0)
      for (const p of d.cfg.points) push(p.id, findRecord(records, p), p.unit);
    else autoPointIds(records).forEach((id, k) => push(id, records[k]));
    return out;
  }

  private errorReadings(d: DeviceRuntime, e: unknown, ts: number): Reading[] {
    const quality: Quality = isEdgeError(e)
      ? e.code === ErrorCode.DeviceTimeout
        ? "timeout"
        : e.code === ErrorCode.PortUnavailable
          ? "comm_error"
          : e.code === ErrorCode.DeviceException
            ? "exception" // CI 70h: the meter named its application error
            : "frame_error"
      : "comm_error";
    const detail = describeError(e);
    const ids = d.points.size > 0 ? [...d.points.keys()] : ["status"];
    return ids.map((point) => ({ device: d.cfg.id, point, ts, value: null, quality, detail }));
  }

  /** Scheduled polls emit their readings; `read()` returns them (the agent ingests them itself). */
  private async poll(d: DeviceRuntime, only?: readonly string[], emit = true): Promise<Reading[]> {
    const ts = Date.now();
    let readings: Reading[];
    try {
      const telegrams = await this.readMeter(d);
      const h = telegrams[0]!.header;
      d.meter = {
        id: h.id,
        manufacturer: h.manufacturer,
        medium: h.mediumName,
        version: h.version,
      };
      readings = this.toReadings(
        d,
        telegrams.flatMap((t) => t.records),
        ts,
      );
      if (!d.status.online)
        this.ctx.event({
          ts,
          type: "device_online",
          severity: "info",
          device: d.cfg.id,
          message: `meter ${h.manufacturer} ${h.id} (${h.mediumName}) answers`,
          data: { ...d.meter },
        });
      d.status.online = true;
      d.status.lastGoodTs = ts;
    } catch (e) {
      readings = this.errorReadings(d, e, ts);
      d.status.errorCount++;
      d.status.lastError = describeError(e);
      d.status.lastErrorTs = ts;
      if (d.status.online || d.status.errorCount === 1)
        this.ctx.event({
          ts,
          type: "device_offline",
          severity: "warning",
          device: d.cfg.id,
          message: describeError(e),
        });
      d.status.online = false;
      this.ctx.logger.warn({ device: d.cfg.id, err: e }, "M-Bus read failed");
    }
    if (only) readings = readings.filter((r) => only.includes(r.point));
    if (emit) this.ctx.emit(readings);
    return readings;
  }

  inventory(): DeviceInfo[] {
    return [...this.devices.values()].map((d) => ({
      id: d.cfg.id,
      driver: this.cfg.id,
      kind: "mbus",
      ...(d.cfg.name ? { name: d.cfg.name } : {}),
      points: [...d.points].map(([id, p]) => ({
        id,
        type: p.type,
        writable: false,
        ...(p.unit ? { unit: p.unit } : {}),
        ...(p.description ? { description: p.description } : {}),
      })),
    }));
  }

  status(): DriverStatus {
    const line = this.lineDiagnosed
      ? `; no valid frame for over ${Math.round(this.cfg.no_frame_timeout / 1000)} s`
      : "";
    return {
      id: this.cfg.id,
      kind: "mbus",
      running: this.running,
      detail: `${this.port.detail}${line}`,
      devices: [...this.devices.values()].map((d) => ({ ...d.status })),
      counters: {
        ...this.master.counters,
        portOpens: this.port.openCount,
        portLosses: this.port.lostCount,
      },
    };
  }

  async read(device: string, points?: readonly string[]): Promise<Reading[]> {
    const d = this.devices.get(device);
    if (!d)
      throw new EdgeError(
        ErrorCode.DeviceUnknown,
        `device "${device}" is not on M-Bus driver "${this.cfg.id}"`,
        { device },
      );
    if (points?.length && d.points.size > 0) {
      const unknown = points.filter((p) => !d.points.has(p));
      if (unknown.length)
        throw new EdgeError(
          ErrorCode.PointUnknown,
          `device ${device} has no point ${unknown.join(", ")}`,
          { device, points: unknown },
        );
    }
    return this.poll(d, points?.length ? points : undefined, false);
  }

  /** The master API, for the `scan` command. */
  get bus(): MbusMaster {
    return this.master;
  }

  async write(request: WriteRequest): Promise<WriteResult> {
    return {
      ok: false,
      detail: `M-Bus driver "${this.cfg.id}" is read-only: meters have no writable points (${request.device}/${request.point})`,
    };
  }
}

export function createMbusDriver(config: MbusDriverConfig, ctx: DriverContext): Driver {
  return new MbusDriver(config, ctx);
}
