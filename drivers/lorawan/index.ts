/**
 * LoRaWAN driver: a Semtech UDP packet-forwarder bridge with a small class A network server
 * (EU868, LoRaWAN 1.0.x) and sandboxed TTN/ChirpStack codecs. See README.md.
 */
import { randomUUID } from "node:crypto";
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
import { CodecRegistry } from "./codecs.js";
import {
  GATEWAY_POINTS,
  LINK_POINTS,
  RESET_POINT,
  gatewayDeviceId,
  resolveDevices,
  type DeviceRuntime,
} from "./devices.js";
import { DownlinkScheduler } from "./downlink.js";
import { EventThrottle } from "./event-throttle.js";
import { GatewayServer } from "./gateways.js";
import { LorawanNetwork } from "./network.js";
import { eventRaiser } from "./network-context.js";
import type { LorawanDriverConfig } from "./schema.js";
import { LorawanState } from "./sessions.js";

export type { LorawanDriverConfig } from "./schema.js";

/** Devices with no uplink for this long are reported offline in the status. */
const ONLINE_FOR_MS = 25 * 3_600_000;
/** Concentrators named in the status line; the table itself is bounded by gateways.max. */
const DETAIL_GATEWAYS = 8;

export class LorawanDriver implements Driver {
  readonly kind = "lorawan";
  readonly id: string;
  private readonly devices: DeviceRuntime[];
  private readonly byId: Map<string, DeviceRuntime>;
  private readonly codecs: CodecRegistry;
  private readonly server: GatewayServer;
  private readonly scheduler: DownlinkScheduler;
  private readonly network: LorawanNetwork;
  private running = false;

  constructor(
    private readonly cfg: LorawanDriverConfig,
    private readonly ctx: DriverContext,
  ) {
    this.id = cfg.id;
    const log = ctx.logger.child({ driver: cfg.id });
    this.devices = resolveDevices(cfg);
    this.byId = new Map(this.devices.map((d) => [d.id, d]));
    this.codecs = new CodecRegistry(
      { timeoutMs: cfg.codec_timeout, memoryBytes: cfg.codec_memory_mb * 1024 * 1024 },
      cfg.codec_workers,
    );
    const state = new LorawanState(ctx.state);
    const throttle = new EventThrottle(cfg.event_interval, eventRaiser(ctx));
    this.server = new GatewayServer(
      cfg.listen,
      {
        rxpk: (gw, rx, at) => this.network.rxpk(gw, rx, at),
        stat: (gw, stat, at) => this.network.stat(gw, stat, at),
        txAck: (_gw, token, error) => this.scheduler.txAck(token, error),
        refused: (cause, message, data) =>
          throttle.event(
            `gateway:${cause}`,
            cause === "moved" ? "lorawan_gateway_moved" : "lorawan_gateway_refused",
            "warning",
            message,
            undefined,
            { cause, ...data },
          ),
      },
      log,
      {
        allow: cfg.gateways.allow.length
          ? new Map(
              cfg.gateways.allow.map((g) =>
                typeof g === "string" ? [g, undefined] : [g.eui, g.address],
              ),
            )
          : undefined,
        max: cfg.gateways.max,
        rebindAfterMs: cfg.gateways.rebind_after,
      },
      { load: () => state.gatewayPaths(), save: (p) => state.saveGatewayPaths(p) },
    );
    this.scheduler = new DownlinkScheduler(this.server, {
      rx1DelayS: cfg.rx1_delay_s,
      rx2Frequency: cfg.rx2_frequency,
      rx2Dr: cfg.rx2_dr,
      txPower: cfg.tx_power,
    });
    this.network = new LorawanNetwork({
      cfg,
      devices: this.devices,
      state,
      codecs: this.codecs,
      scheduler: this.scheduler,
      ctx,
      log,
      throttle,
    });
  }

  async start(): Promise<void> {
    // Read every codec now: a missing file is a config error at start, not at the first uplink.
    for (const d of this.devices) this.codecs.get(d.codec);
    this.network.init();
    await this.server.start();
    this.running = true;
    // Load the codecs in their sandboxes in the background; a codec that does not compile is an
    // error event (its devices then get codec_error readings), the others keep working.
    const firstUser = new Map<string, string>();
    for (const d of this.devices) if (!firstUser.has(d.codec)) firstUser.set(d.codec, d.id);
    for (const [codec, device] of firstUser) {
      void this.codecs
        .get(codec)
        .check(device)
        .then((err) => {
          if (err)
            this.ctx.event({
              ts: Date.now(),
              type: "lorawan_codec_error",
              severity: "error",
              message: err,
              data: { codec },
            });
        });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.network.stop();
    this.scheduler.clear();
    await this.server.stop();
    await this.codecs.close();
  }

  /** The UDP port actually bound (config port 0 picks a free one). */
  port(): number {
    return this.server.port();
  }

  inventory(): DeviceInfo[] {
    const out: DeviceInfo[] = this.devices.map((d) => {
      const points: PointInfo[] = d.points.map((p) => ({
        id: p.id,
        ...(p.unit ? { unit: p.unit } : {}),
        type: "number" as const,
        writable: p.writable,
        ...(p.min !== undefined ? { min: p.min } : {}),
        ...(p.max !== undefined ? { max: p.max } : {}),
        ...(p.description ? { description: p.description } : {}),
      }));
      if (d.cfg.link_points) points.push(...LINK_POINTS);
      if (d.cfg.activation.type === "abp") points.push(RESET_POINT);
      return {
        id: d.id,
        driver: this.id,
        kind: this.kind,
        ...(d.cfg.name ? { name: d.cfg.name } : {}),
        points,
      };
    });
    for (const gw of this.server.gateways.values()) {
      out.push({
        id: gatewayDeviceId(gw.eui),
        driver: this.id,
        kind: this.kind,
        name: `LoRa concentrator ${gw.eui}`,
        points: GATEWAY_POINTS.map((p) => ({
          id: p.id,
          ...(p.unit ? { unit: p.unit } : {}),
          type: "number" as const,
          writable: false,
          description: p.description,
        })),
      });
    }
    return out;
  }

  status(): DriverStatus {
    const now = Date.now();
    const devices: DeviceStatus[] = this.devices.map((d) => ({
      id: d.id,
      online: d.lastUplinkAt !== undefined && now - d.lastUplinkAt < ONLINE_FOR_MS,
      ...(d.lastUplinkAt !== undefined ? { lastGoodTs: d.lastUplinkAt } : {}),
      errorCount: d.errorCount,
      ...(d.lastError !== undefined ? { lastError: d.lastError, lastErrorTs: d.lastErrorTs } : {}),
    }));
    for (const gw of this.server.gateways.values()) {
      const seen = Math.max(gw.lastPushAt ?? 0, gw.pull?.at ?? 0);
      devices.push({
        id: gatewayDeviceId(gw.eui),
        online: now - seen < 120_000,
        ...(seen ? { lastGoodTs: seen } : {}),
        errorCount: gw.txErrors,
      });
    }
    const counters: Record<string, number> = {
      ...this.server.counters,
      ...this.network.counters,
      codec_restarts: this.codecs.restarts(),
    };
    for (const [k, v] of Object.entries(this.scheduler.counters)) counters[`tx_${k}`] = v;
    const gws = [...this.server.gateways.values()];
    // Bounded whatever arrives on UDP: the table is capped (gateways.max), names and sources cut.
    const named = gws
      .slice(0, DETAIL_GATEWAYS)
      .map((g) => `${g.eui}${g.pull ? "" : " (no PULL_DATA yet)"}`);
    if (gws.length > DETAIL_GATEWAYS) named.push(`… ${gws.length - DETAIL_GATEWAYS} more`);
    const refused = this.server.admission.refusedSources(3);
    const refusedText = refused.length
      ? `; refused datagrams from ${refused.map((s) => `${s.address} (${s.datagrams}, last EUI ${s.lastEui})`).join(", ")}`
      : "";
    return {
      id: this.id,
      kind: this.kind,
      running: this.running,
      detail: `listening on UDP ${this.cfg.listen.host}:${this.port()}, ${gws.length} concentrator(s)${named.length ? `: ${named.join(", ")}` : ""}${refusedText}`,
      devices,
      counters,
    };
  }

  /** Class A devices cannot be asked: this returns the last values received. */
  async read(device: string, points?: readonly string[]): Promise<Reading[]> {
    const d = this.device(device);
    return [...d.last.values()].filter((r) => !points || points.includes(r.point));
  }

  /**
   * Encode a command through the device's codec (`encodeDownlink({data: {<field>: value}})`).
   * Separate from `write` so the encoding path can be tested and shown (`--dry-run`).
   */
  async encodeCommand(
    device: string,
    point: string,
    value: unknown,
  ): Promise<{ fPort: number; bytes: Buffer }> {
    const d = this.device(device);
    const p = d.points.find((x) => x.id === point);
    if (!p)
      throw new EdgeError(ErrorCode.PointUnknown, `device ${device} has no point "${point}"`, {
        device,
        point,
      });
    if (!p.writable)
      throw new EdgeError(
        ErrorCode.CommandRefused,
        `point ${device}/${point} is not writable (set writable: true in the config to allow it)`,
        { device, point },
      );
    const r = await this.codecs.get(d.codec).encode({ [p.field ?? p.id]: value }, d.id);
    if (!r.ok)
      throw new EdgeError(
        ErrorCode.CodecFailed,
        `codec ${d.codec} cannot encode ${point}=${JSON.stringify(value)}: ${r.error}`,
        { device, point, kind: r.kind },
      );
    return r.value;
  }

  async write(req: WriteRequest): Promise<WriteResult> {
    if (req.point === RESET_POINT.id) return this.resetCounters(req);
    const { fPort, bytes } = await this.encodeCommand(req.device, req.point, req.value);
    const d = this.device(req.device);
    const queued = this.network.queueLength(d.id);
    if (queued >= this.cfg.max_queue)
      return {
        ok: false,
        detail: `downlink queue of ${d.id} is full (${queued}); the device takes one per uplink`,
      };
    const n = this.network.enqueue(d.id, {
      id: randomUUID(),
      fPort,
      bytes: bytes.toString("hex"),
      confirmed: req.confirmed ?? false,
      ...(req.commandId ? { commandId: req.commandId } : {}),
      attempts: 0,
      queuedAt: Date.now(),
    });
    return {
      ok: true,
      queued: true,
      detail: `queued (${n} in queue) for the RX1 window after the device's next uplink; FPort ${fPort}, ${bytes.length} bytes`,
    };
  }

  /** `reset_frame_counters` = true (the router checked the point is declared and writable). */
  private resetCounters(req: WriteRequest): WriteResult {
    const d = this.device(req.device);
    if (d.cfg.activation.type !== "abp")
      throw new EdgeError(
        ErrorCode.CommandRefused,
        `${d.id} is an OTAA device: its counters restart when it joins again`,
        { device: d.id },
      );
    if (req.value !== true)
      throw new EdgeError(
        ErrorCode.CommandInvalid,
        `write true to ${d.id}/${RESET_POINT.id} to reset its frame counters`,
        { device: d.id },
      );
    const prev = this.network.resetAbpCounters(d);
    this.ctx.event({
      ts: Date.now(),
      type: "lorawan_counters_reset",
      severity: "warning",
      device: d.id,
      message: `frame counters reset to 0 (were up ${prev.fCntUp}, down ${prev.fCntDown}): old frames of this device are accepted again until its counter passes them`,
      data: { ...prev, ...(req.commandId ? { commandId: req.commandId } : {}) },
    });
    return {
      ok: true,
      detail: `frame counters reset (were up ${prev.fCntUp}, down ${prev.fCntDown})`,
    };
  }

  private device(id: string): DeviceRuntime {
    const d = this.byId.get(id);
    if (!d)
      throw new EdgeError(
        ErrorCode.DeviceUnknown,
        `no LoRaWAN device "${id}" in driver ${this.id}`,
        { device: id },
      );
    return d;
  }
}

export function createLorawanDriver(
  config: LorawanDriverConfig,
  ctx: DriverContext,
): LorawanDriver {
  return new LorawanDriver(config, ctx);
}
