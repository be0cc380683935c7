/**
 * One polled device: its read plan, its schedule, its health. A poll sends the device's planned
 * reads one after the other on its link; a timeout or frame error is retried `retries` times,
 * and when a read still fails without an answer the rest of the cycle is skipped (the device is
 * unreachable: asking again would only hold the bus). After `offline_after` failed polls in a
 * row the device is offline (one event) and is retried with a doubling delay up to
 * `backoff_max`, so a dead device never takes the bus time of the live ones. An exception is an
 * answer: the device is alive and only the points of that read carry the exception.
 */
import type { Logger } from "pino";
import type { DriverContext, DriverEvent, Reading } from "../driver.js";
import { decodeRegisters, pointSize, scaleValue } from "./codec.js";
import { type ModbusLink, ModbusError, type Op } from "./link.js";
import { planReads, type ReadRequest } from "./plan.js";
import type {
  ByteOrder,
  ModbusDeviceConfig,
  ModbusDriverConfig,
  ModbusPointConfig,
} from "./schema.js";

export interface PlannedPoint {
  table: ModbusPointConfig["table"];
  address: number;
  size: number;
  point: ModbusPointConfig;
  // Copied out of the config object once, for the hot decode loop.
  id: string;
  unit: string | undefined;
  order: ByteOrder;
  plain: boolean; // scale 1, offset 0: the raw number is the value
}

export class ModbusDevice {
  online: boolean | undefined;
  lastGoodTs: number | undefined;
  errorCount = 0;
  lastError: string | undefined;
  lastErrorTs: number | undefined;
  failures = 0;
  readonly order: ByteOrder;
  readonly plan: ReadRequest<PlannedPoint>[];
  readonly interval: number;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private due = 0;
  private polling = false;
  private stopped = true;
  private readonly log: Logger;

  constructor(
    readonly cfg: ModbusDeviceConfig,
    private readonly driver: ModbusDriverConfig,
    readonly link: ModbusLink,
    private readonly ctx: DriverContext,
  ) {
    this.order = cfg.byte_order ?? driver.byte_order;
    this.interval = cfg.poll_interval ?? driver.poll_interval;
    this.log = ctx.logger.child({ device: cfg.id });
    this.plan = this.planFor(cfg.points);
  }

  planFor(points: readonly ModbusPointConfig[]): ReadRequest<PlannedPoint>[] {
    const items = points.map((p) => ({
      table: p.table,
      address: p.address,
      size: pointSize(p),
      point: p,
      id: p.id,
      unit: p.unit,
      order: p.order ?? this.order,
      plain: p.scale === 1 && p.offset === 0,
    }));
    return planReads(items, {
      maxRegisters: this.driver.max_registers,
      maxBits: this.driver.max_bits,
      maxGap: this.cfg.max_gap ?? this.driver.max_gap,
    });
  }

  start(): void {
    if (this.plan.length === 0) return; // no points yet: nothing to poll
    if (this.cfg.unit_id === 0 && this.driver.transport.type === "rtu") return; // broadcast: write-only
    this.stopped = false;
    this.due = Date.now();
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    // A due poll runs on the next turn of the event loop, not after a timer's 1 ms minimum.
    this.timer =
      delay <= 0 ? setImmediate(() => void this.tick()) : setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.polling) return;
    this.polling = true;
    try {
      const readings = await this.poll(this.plan, "low");
      if (!this.stopped) this.ctx.emit(readings);
    } catch (e) {
      this.log.error({ err: e }, "poll failed unexpectedly");
    } finally {
      this.polling = false;
    }
    const now = Date.now();
    let wait: number;
    if (this.online === false) {
      // Offline: doubling delay from the poll interval (at least 1 s) up to backoff_max.
      const k = Math.min(this.failures - this.driver.offline_after, 20);
      wait = Math.min(this.driver.backoff_max, Math.max(this.interval, 1000) * 2 ** Math.max(k, 0));
      this.due = now + wait;
    } else {
      // Fixed rate without drift; when late, poll at once but never in a burst to catch up.
      this.due = Math.max(this.due + this.interval, now);
      wait = this.due - now;
    }
    this.schedule(wait);
  }

  /** Run the given reads; returns one reading per point. Also used for on-demand reads. */
  async poll(
    plan: readonly ReadRequest<PlannedPoint>[],
    priority: "high" | "low",
  ): Promise<Reading[]> {
    const out: Reading[] = [];
    let answered = false;
    let unreachable: ModbusError | undefined;
    for (const req of plan) {
      if (unreachable) {
        out.push(...this.failed(req, unreachable, Date.now()));
        continue;
      }
      try {
        const res = await this.readWithRetries(req, priority);
        answered = true;
        out.push(...this.decode(req, res, Date.now()));
      } catch (e) {
        const err = e instanceof ModbusError ? e : new ModbusError("comm_error", String(e));
        if (err.quality === "exception") answered = true;
        else unreachable = err;
        this.noteError(err);
        out.push(...this.failed(req, err, Date.now()));
      }
    }
    if (answered) this.markAlive();
    else if (unreachable) this.markFailure(unreachable);
    return out;
  }

  private async readWithRetries(req: ReadRequest<PlannedPoint>, priority: "high" | "low") {
    const fc = ({ coil: 1, discrete_input: 2, holding: 3, input: 4 } as const)[req.table];
    const op: Op = { fc, unit: this.cfg.unit_id, address: req.address, count: req.count };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.link.request(op, priority);
      } catch (e) {
        if (!(e instanceof ModbusError) || !e.retryable || attempt >= this.driver.retries) throw e;
        this.log.debug({ attempt, why: e.message, address: req.address }, "retrying read");
      }
    }
  }

  private decode(
    req: ReadRequest<PlannedPoint>,
    res: { bits?: boolean[]; registers?: number[] },
    ts: number,
  ): Reading[] {
    const out = new Array<Reading>(req.items.length);
    const device = this.cfg.id;
    const regs = res.registers;
    for (let k = 0; k < req.items.length; k++) {
      const it = req.items[k]!;
      const off = it.address - req.address;
      // One object shape for every reading (unit may be undefined): cheaper for V8.
      const r: Reading = { device, point: it.id, ts, value: null, unit: it.unit, quality: "good" };
      if (res.bits) r.value = res.bits[off] ?? false;
      else if (!regs || off + it.size > regs.length) {
        r.quality = "frame_error";
        r.detail = "answer shorter than requested";
      } else {
        const p = it.point;
        const raw = decodeRegisters(regs, p, it.order, off);
        if (typeof raw === "string") r.value = raw;
        else if (p.type === "bit") r.value = raw === 1;
        else if (Number.isFinite(raw))
          r.value = it.plain ? raw : scaleValue(raw, p.scale, p.offset);
        else {
          const hex = regs
            .slice(off, off + it.size)
            .map((x) => x.toString(16).padStart(4, "0"))
            .join(" ");
          r.quality = "codec_error";
          r.detail = `device returned ${raw} (registers ${hex})`;
        }
      }
      out[k] = r;
    }
    return out;
  }

  private failed(req: ReadRequest<PlannedPoint>, err: ModbusError, ts: number): Reading[] {
    const quality =
      this.online === false && err.quality !== "exception" ? ("offline" as const) : err.quality;
    const detail = `${err.message} (unit ${this.cfg.unit_id}, ${req.table} ${req.address}..${req.address + req.count - 1}, ${this.link.name})`;
    return req.items.map(({ point: p }) => ({
      device: this.cfg.id,
      point: p.id,
      ts,
      value: null,
      ...(p.unit ? { unit: p.unit } : {}),
      quality,
      detail,
    }));
  }

  private noteError(err: ModbusError): void {
    this.errorCount++;
    this.lastError = err.message;
    this.lastErrorTs = Date.now();
  }

  emitReadings(readings: readonly Reading[]): void {
    if (!this.stopped) this.ctx.emit(readings);
  }

  markAlive(): void {
    this.lastGoodTs = Date.now();
    this.failures = 0;
    if (this.online !== true) {
      const wasOffline = this.online === false;
      this.online = true;
      this.event(
        "device_online",
        "info",
        wasOffline ? `${this.cfg.id} answers again` : `${this.cfg.id} answers`,
      );
    }
  }

  markFailure(err: ModbusError): void {
    this.failures++;
    if (this.failures >= this.driver.offline_after && this.online !== false) {
      this.online = false;
      this.event(
        "device_offline",
        "warning",
        `${this.cfg.id} does not answer: ${err.message} (${this.failures} polls in a row)`,
        {
          quality: err.quality,
          endpoint: this.link.name,
          unit_id: this.cfg.unit_id,
        },
      );
    }
  }

  private event(
    type: string,
    severity: DriverEvent["severity"],
    message: string,
    data?: Record<string, unknown>,
  ): void {
    this.log.info({ type }, message);
    this.ctx.event({
      ts: Date.now(),
      type,
      severity,
      device: this.cfg.id,
      message,
      data: { driver: this.driver.id, ...data },
    });
  }
}
