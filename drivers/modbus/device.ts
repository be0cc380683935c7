/**
 * One polled device: its read plan, its schedule, its health. A poll sends the device's planned
 * reads one after the other on its link; a timeout or frame error is retried `retries` times,
 * and when a read still fails without an answer the rest of the cycle is skipped (the device is
 * unreachable: asking again would only hold the bus). After `offline_after` failed polls in a
 * row the device is offline (one event) and is retried with a doubling delay up to
 * `backoff_max`, so a dead device never takes the bus time of the live ones. An exception is an
 * answer: the device is alive and only the points of that read carry the exception — except
 * "illegal data address" to a read spanning unmapped registers: that read is split and retried
 * at once, and the table is read without gaps from then on (split.ts).
 */
import type { Logger } from "pino";
import type { DriverContext, DriverEvent, Reading } from "../driver.js";
import { decodeRegisters, pointSize, scaleValue } from "./codec.js";
import { type ModbusLink, ModbusError, type Op, type OpResult } from "./link.js";
import { planReads, type PlanLimits, type ReadRequest } from "./plan.js";
import type {
  ByteOrder,
  ModbusDeviceConfig,
  ModbusDriverConfig,
  ModbusPointConfig,
  Table,
} from "./schema.js";
import { hasGap, ILLEGAL_DATA_ADDRESS, splitMessage } from "./split.js";

/**
 * A point as the decode loop needs it. Everything is copied out of the config object once, so
 * the loop, which runs for every point of every poll, reads one small monomorphic object (it is
 * also the CodecPoint handed to decodeRegisters).
 */
export interface PlannedPoint {
  table: ModbusPointConfig["table"];
  address: number;
  size: number;
  point: ModbusPointConfig;
  id: string;
  unit: string | undefined;
  order: ByteOrder;
  type: ModbusPointConfig["type"];
  length: number | undefined;
  bit: number | undefined;
  scale: number;
  offset: number;
  plain: boolean; // scale 1, offset 0: the raw number is the value
  /** uint16, no byte swap, plain: the register as read is the value (the most common point). */
  direct: boolean;
}

/** A planned read, with its request built once (it is the same at every poll). */
type PlannedRead = ReadRequest<PlannedPoint> & { op?: Op };

/** What one poll learnt about the device, across its reads. */
interface PollState {
  answered: boolean;
  unreachable: ModbusError | undefined;
}

const SERVER_BUSY = 6;
const FC = { coil: 1, discrete_input: 2, holding: 3, input: 4 } as const;

export class ModbusDevice {
  online: boolean | undefined;
  lastGoodTs: number | undefined;
  errorCount = 0;
  lastError: string | undefined;
  lastErrorTs: number | undefined;
  failures = 0;
  readonly order: ByteOrder;
  /** The polled reads; replaced (never mutated) when a table falls back to reads without gaps. */
  plan: PlannedRead[];
  readonly interval: number;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  // Bound once: a poll is scheduled after every poll, for every device.
  private readonly onTimer = (): void => void this.tick();
  private due = 0;
  private polling = false;
  private stopped = true;
  private readonly log: Logger;
  /** Tables whose reads spanning a gap the device refused: planned without gaps from then on. */
  private readonly gapless = new Set<Table>();
  private readonly limits: PlanLimits;

  constructor(
    readonly cfg: ModbusDeviceConfig,
    private readonly driver: ModbusDriverConfig,
    readonly link: ModbusLink,
    private readonly ctx: DriverContext,
  ) {
    this.order = cfg.byte_order ?? driver.byte_order;
    this.interval = cfg.poll_interval ?? driver.poll_interval;
    this.log = ctx.logger.child({ device: cfg.id });
    this.limits = {
      maxRegisters: cfg.max_registers ?? driver.max_registers,
      maxBits: driver.max_bits,
      maxGap: cfg.max_gap ?? driver.max_gap,
      gapless: this.gapless,
    };
    this.plan = this.planFor(cfg.points);
  }

  planFor(points: readonly ModbusPointConfig[]): PlannedRead[] {
    const items = points.map((p): PlannedPoint => {
      const order = p.order ?? this.order;
      const plain = p.scale === 1 && p.offset === 0;
      return {
        table: p.table,
        address: p.address,
        size: pointSize(p),
        point: p,
        id: p.id,
        unit: p.unit,
        order,
        type: p.type,
        length: p.length,
        bit: p.bit,
        scale: p.scale,
        offset: p.offset,
        plain,
        direct: p.type === "uint16" && plain && (order === "ABCD" || order === "CDAB"),
      };
    });
    return planReads(items, this.limits);
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
    this.timer = delay <= 0 ? setImmediate(this.onTimer) : setTimeout(this.onTimer, delay);
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
  async poll(plan: readonly PlannedRead[], priority: "high" | "low"): Promise<Reading[]> {
    const st: PollState = { answered: false, unreachable: undefined };
    const out = await this.readAll(plan, priority, st);
    if (st.answered) this.markAlive();
    else if (st.unreachable) this.markFailure(st.unreachable);
    return out ?? [];
  }

  private async readAll(
    plan: readonly PlannedRead[],
    priority: "high" | "low",
    st: PollState,
  ): Promise<Reading[] | undefined> {
    let out: Reading[] | undefined;
    for (const req of plan) {
      let part: Reading[] | undefined;
      if (st.unreachable) part = this.failed(req, st.unreachable, Date.now());
      else {
        try {
          const res = await this.readWithRetries(req, priority);
          st.answered = true;
          part = this.decode(req, res, Date.now());
        } catch (e) {
          const err = e instanceof ModbusError ? e : new ModbusError("comm_error", String(e));
          if (err.quality === "exception") st.answered = true;
          else st.unreachable = err;
          if (err.exceptionCode === ILLEGAL_DATA_ADDRESS && hasGap(req)) {
            // The device refuses reads across unmapped registers: read them apart, now and on.
            this.refusedGap(req);
            part = await this.readAll(planReads(req.items, this.limits), priority, st);
          } else {
            this.noteError(err);
            part = this.failed(req, err, Date.now());
          }
        }
      }
      // Most devices are one read: its array is the result (no copy, no spread of 50 items).
      if (out === undefined) out = part;
      else if (part) for (let k = 0; k < part.length; k++) out.push(part[k]!);
    }
    return out;
  }

  /** First refusal of a read across a gap in this table: plan the table without gaps. */
  private refusedGap(req: PlannedRead): void {
    if (this.gapless.has(req.table)) return; // already split (a read planned before it was)
    this.gapless.add(req.table);
    this.plan = this.planFor(this.cfg.points);
    this.event("modbus_plan_split", "warning", splitMessage(this.cfg.id, req), {
      table: req.table,
      address: req.address,
      count: req.count,
      unit_id: this.cfg.unit_id,
      reads: this.plan.length,
    });
  }

  private async readWithRetries(req: PlannedRead, priority: "high" | "low") {
    const op: Op = (req.op ??= {
      fc: FC[req.table],
      unit: this.cfg.unit_id,
      address: req.address,
      count: req.count,
    });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.request(op, priority);
      } catch (e) {
        if (!(e instanceof ModbusError) || !e.retryable || attempt >= this.driver.retries) throw e;
        this.log.debug({ attempt, why: e.message, address: req.address }, "retrying read");
      }
    }
  }

  /**
   * One transaction on the link; an answer "server device busy" (exception 6, Modbus
   * Application Protocol §7: the request was not executed, retry later) is retried up to
   * `busy_retries` times after a doubling wait from `busy_backoff`, as Telegraf's busy_retries.
   */
  async request(op: Op, priority: "high" | "low"): Promise<OpResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.link.request(op, priority);
      } catch (e) {
        if (
          !(e instanceof ModbusError) ||
          e.exceptionCode !== SERVER_BUSY ||
          attempt >= this.driver.busy_retries
        )
          throw e;
        const wait = this.driver.busy_backoff * 2 ** attempt;
        this.log.debug({ attempt, wait, address: op.address }, "device busy, retrying");
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private decode(req: PlannedRead, res: OpResult, ts: number): Reading[] {
    const items = req.items;
    const n = items.length;
    const out = new Array<Reading>(n);
    const device = this.cfg.id;
    const regs = res.registers;
    const bits = res.bits;
    const nregs = regs === undefined ? -1 : regs.length;
    for (let k = 0; k < n; k++) {
      const it = items[k]!;
      const off = it.address - req.address;
      let value: Reading["value"] = null;
      let bad: Reading["quality"] | undefined;
      let detail: string | undefined;
      if (bits !== undefined) value = bits[off] ?? false;
      else if (off + it.size > nregs) {
        bad = "frame_error";
        detail = "answer shorter than requested";
      } else if (it.direct) value = regs![off]! & 0xffff;
      else {
        const raw = decodeRegisters(regs!, it, it.order, off);
        if (typeof raw === "string") value = raw;
        else if (it.type === "bit") value = raw === 1;
        else if (Number.isFinite(raw))
          value = it.plain ? raw : scaleValue(raw, it.scale, it.offset);
        else {
          const hex = regs!
            .slice(off, off + it.size)
            .map((x) => x.toString(16).padStart(4, "0"))
            .join(" ");
          bad = "codec_error";
          detail = `device returned ${raw} (registers ${hex})`;
        }
      }
      // One object shape for every good reading (unit may be undefined): cheaper for V8.
      const r: Reading = {
        device,
        point: it.id,
        ts,
        value,
        unit: it.unit,
        quality: bad ?? "good",
      };
      if (detail !== undefined) r.detail = detail;
      out[k] = r;
    }
    return out;
  }

  private failed(req: PlannedRead, err: ModbusError, ts: number): Reading[] {
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
