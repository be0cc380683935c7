/**
 * The Modbus driver: one instance per bus (a TCP endpoint or several, a serial line, a serial
 * server). Devices are polled on their own schedules; each endpoint has one queue (link.ts);
 * writes go before polls. See README.md for the configuration and the profile guide.
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type { DriverConfig } from "../schemas.js";
import type {
  DeviceInfo,
  Driver,
  DriverContext,
  DriverStatus,
  Reading,
  WriteRequest,
  WriteResult,
} from "../driver.js";
import { ModbusDevice } from "./device.js";
import { type LinkEndpoint, ModbusLink } from "./link.js";
import { reconfigureDevices, sameBus } from "./reconfigure.js";
import type { ModbusDeviceConfig, ModbusDriverConfig } from "./schema.js";
import { executeWrite } from "./write.js";

/** 3.5 character times (11 bits each), or 1.75 ms above 19200 baud (Modbus serial V1.02 §2.5.1.1). */
export function defaultFrameDelayMs(baud: number): number {
  return baud > 19200 ? 1.75 : (3.5 * 11 * 1000) / baud;
}

function endpointFor(cfg: ModbusDriverConfig, dev: ModbusDeviceConfig): LinkEndpoint {
  const t = cfg.transport;
  switch (t.type) {
    case "tcp":
      return {
        type: "tcp",
        host: dev.host ?? t.host,
        port: dev.port ?? t.port,
        concurrency: t.concurrency,
      };
    case "rtu":
      return {
        type: "rtu",
        path: t.path,
        baud: t.baud,
        parity: t.parity,
        dataBits: t.data_bits,
        stopBits: t.stop_bits,
        frameDelayMs: t.frame_delay_ms ?? defaultFrameDelayMs(t.baud),
        turnaroundMs: t.turnaround_ms,
      };
    case "rtu_over_tcp":
      return { type: "rtu_over_tcp", host: t.host, port: t.port, frameDelayMs: t.frame_delay_ms };
  }
}

export class ModbusDriver implements Driver {
  readonly kind = "modbus";
  private readonly links = new Map<string, ModbusLink>();
  private readonly devices = new Map<string, ModbusDevice>();
  private running = false;

  constructor(
    // Not readonly: `reconfigure` replaces it when only the devices changed.
    private cfg: ModbusDriverConfig,
    private readonly ctx: DriverContext,
  ) {
    for (const dev of cfg.devices) {
      if (dev.enabled) this.devices.set(dev.id, this.createDevice(dev));
    }
  }

  /** A device on the link of its endpoint (shared with the devices already on it). */
  private createDevice(dev: ModbusDeviceConfig): ModbusDevice {
    const ep = endpointFor(this.cfg, dev);
    const key = JSON.stringify(ep);
    let link = this.links.get(key);
    if (!link) {
      link = new ModbusLink(ep, this.cfg.timeout_ms, this.ctx.logger, {
        reconnectAfterTimeouts: this.cfg.reconnect_after_timeouts,
      });
      this.links.set(key, link);
    }
    return new ModbusDevice(dev, this.cfg, link, this.ctx);
  }

  /** Only the devices changed: restart those, the others keep polling (reconfigure.ts). */
  async reconfigure(next: DriverConfig): Promise<string[] | false> {
    if (next.driver !== "modbus" || next.id !== this.cfg.id || !sameBus(this.cfg, next))
      return false;
    const prev = this.cfg;
    this.cfg = next;
    const restarted = await reconfigureDevices(
      {
        devices: this.devices,
        links: this.links,
        running: this.running,
        create: (dev) => this.createDevice(dev),
      },
      prev,
      next,
    );
    this.ctx.logger.info({ devices: restarted }, "devices reconfigured in place");
    return restarted;
  }

  get id(): string {
    return this.cfg.id;
  }

  async start(): Promise<void> {
    this.running = true;
    for (const d of this.devices.values()) d.start();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const d of this.devices.values()) d.stop();
    await Promise.all([...this.links.values()].map((l) => l.close()));
  }

  inventory(): DeviceInfo[] {
    return this.cfg.devices.map((d) => ({
      id: d.id,
      driver: this.cfg.id,
      kind: "modbus",
      ...(d.name ? { name: d.name } : {}),
      points: d.points.map((p) => ({
        id: p.id,
        ...(p.unit ? { unit: p.unit } : {}),
        type:
          p.type === "string"
            ? ("string" as const)
            : p.type === "bool" || p.type === "bit"
              ? ("boolean" as const)
              : ("number" as const),
        writable: p.writable,
        ...(p.min !== undefined ? { min: p.min } : {}),
        ...(p.max !== undefined ? { max: p.max } : {}),
        ...(p.labels ? { labels: p.labels } : {}),
        ...(p.description ? { description: p.description } : {}),
      })),
    }));
  }

  status(): DriverStatus {
    const counters: Record<string, number> = {};
    for (const l of this.links.values())
      for (const [k, v] of Object.entries(l.counters)) counters[k] = (counters[k] ?? 0) + v;
    return {
      id: this.cfg.id,
      kind: "modbus",
      running: this.running,
      detail: [...this.links.values()].map((l) => l.detail).join("; "),
      devices: [...this.devices.values()].map((d) => ({
        id: d.cfg.id,
        online: d.online === true,
        ...(d.lastGoodTs !== undefined ? { lastGoodTs: d.lastGoodTs } : {}),
        errorCount: d.errorCount,
        ...(d.lastError !== undefined ? { lastError: d.lastError } : {}),
        ...(d.lastErrorTs !== undefined ? { lastErrorTs: d.lastErrorTs } : {}),
      })),
      counters,
    };
  }

  private device(id: string): ModbusDevice {
    const d = this.devices.get(id);
    if (!d)
      throw new EdgeError(
        ErrorCode.DeviceUnknown,
        `no enabled Modbus device "${id}" on driver ${this.cfg.id} (devices: ${[...this.devices.keys()].join(", ")})`,
        { device: id },
      );
    return d;
  }

  async read(device: string, points?: readonly string[]): Promise<Reading[]> {
    const d = this.device(device);
    let selected = d.cfg.points;
    if (points && points.length > 0) {
      const unknown = points.filter((p) => !d.cfg.points.some((q) => q.id === p));
      if (unknown.length)
        throw new EdgeError(
          ErrorCode.PointUnknown,
          `device ${device} has no point ${unknown.join(", ")}`,
          { device, points: unknown },
        );
      selected = d.cfg.points.filter((p) => points.includes(p.id));
    }
    return d.poll(d.planFor(selected), "high");
  }

  async write(request: WriteRequest): Promise<WriteResult> {
    const d = this.device(request.device);
    const p = d.cfg.points.find((q) => q.id === request.point);
    if (!p)
      throw new EdgeError(
        ErrorCode.PointUnknown,
        `device ${request.device} has no point ${request.point}`,
        { device: request.device, point: request.point },
      );
    const res = await executeWrite(d, p, request);
    this.ctx.logger.info(
      {
        device: request.device,
        point: request.point,
        value: request.value,
        commandId: request.commandId,
        ok: res.ok,
        detail: res.detail,
      },
      "modbus write",
    );
    return res;
  }
}

/** The context's logger is already the driver's child logger (`{driver}`, see agent.ts). */
export function createModbusDriver(config: ModbusDriverConfig, ctx: DriverContext): Driver {
  return new ModbusDriver(config, ctx);
}
