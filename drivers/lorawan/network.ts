/**
 * The network server, wired together: what the driver (index.ts) sees of it. Copies from the
 * concentrators are merged (dedup.ts), then each frame goes by its MType to OTAA joins (join.ts)
 * or data uplinks (uplink.ts), which answer through the downlink queue (downlink-queue.ts) and
 * produce readings (readings.ts). This file builds those parts around one shared context
 * (network-context.ts), starts them (sessions restored into the device index, device-index.ts),
 * dispatches frames and owns the counters: frames and `stat` reports in, queue operations and
 * counters out.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { DriverContext } from "../driver.js";
import type { CodecRegistry } from "./codecs.js";
import { Deduplicator } from "./dedup.js";
import { DeviceIndex, restoreSessions } from "./device-index.js";
import type { DeviceRuntime } from "./devices.js";
import type { DownlinkScheduler, UplinkContext } from "./downlink.js";
import { DownlinkQueue } from "./downlink-queue.js";
import type { GatewayInfo } from "./gateways.js";
import { EventThrottle } from "./event-throttle.js";
import { JoinHandler } from "./join.js";
import { MType, mtypeOf } from "./lora.js";
import { eventRaiser, newNetworkCounters, type NetContext } from "./network-context.js";
import { ReadingMaker } from "./readings.js";
import type { LorawanDriverConfig } from "./schema.js";
import type { GatewayStat, RxPk } from "./semtech.js";
import type { LorawanState, QueuedDownlink } from "./sessions.js";
import { UplinkHandler } from "./uplink.js";

export interface NetworkDeps {
  cfg: LorawanDriverConfig;
  devices: DeviceRuntime[];
  state: LorawanState;
  codecs: CodecRegistry;
  scheduler: DownlinkScheduler;
  ctx: DriverContext;
  log: Logger;
  /** Shared with the gateway server (refused concentrators); made here when absent. */
  throttle?: EventThrottle;
}

export class LorawanNetwork {
  readonly counters = newNetworkCounters();
  private readonly net: NetContext;
  private readonly index: DeviceIndex;
  private readonly dedup: Deduplicator;
  private readonly joins: JoinHandler;
  private readonly uplinks: UplinkHandler;
  private readonly downlinks: DownlinkQueue;
  private readonly readings: ReadingMaker;

  constructor(private readonly d: NetworkDeps) {
    const event = eventRaiser(d.ctx);
    this.net = {
      cfg: d.cfg,
      state: d.state,
      log: d.log,
      counters: this.counters,
      event,
      throttled: d.throttle ?? new EventThrottle(d.cfg.event_interval, event),
    };
    this.index = new DeviceIndex(d.devices);
    this.dedup = new Deduplicator(d.cfg.dedup_window, this.counters, (phy, up, gateways) =>
      this.frame(phy, up, gateways),
    );
    this.readings = new ReadingMaker(this.net, d.codecs, (r) => d.ctx.emit(r));
    this.downlinks = new DownlinkQueue(this.net, d.scheduler);
    this.joins = new JoinHandler(this.net, this.index, d.scheduler);
    this.uplinks = new UplinkHandler(this.net, this.index, this.downlinks, this.readings);
  }

  /** Restore sessions: ABP from the config (keeping persisted counters), OTAA from the state. */
  init(): void {
    restoreSessions(this.d.devices, this.d.state, this.index);
    this.dedup.start();
  }

  stop(): void {
    this.dedup.stop();
    this.net.throttled.flush();
  }

  /** One copy of a frame, as a concentrator reported it (PUSH_DATA `rxpk`). */
  rxpk(gw: GatewayInfo, rx: RxPk, receivedAt: number): void {
    this.dedup.rxpk(gw, rx, receivedAt);
  }

  /** A concentrator's `stat` report. */
  stat(gw: GatewayInfo, stat: GatewayStat, receivedAt: number): void {
    this.readings.stat(gw, stat, receivedAt);
  }

  queueLength(device: string): number {
    return this.downlinks.length(device);
  }

  /**
   * Restart an ABP device's frame counters at 0 (a device that lost its counters: its uplinks are
   * refused as replays until then). Reopens the replay window for its old frames, which is why
   * only the command router calls it (writable point `reset_frame_counters`, audited).
   */
  resetAbpCounters(dev: DeviceRuntime): { fCntUp: number; fCntDown: number } {
    const s = this.d.state.session(dev.id);
    if (!s || s.activation !== "abp")
      throw new Error(`${dev.id} has no ABP session (an OTAA device gets new counters by joining)`);
    const { pendingAck: _dropped, ...rest } = s;
    this.d.state.saveSession(dev.id, {
      ...rest,
      sid: randomUUID(),
      fCntUp: 0,
      lastFCntUp: -1,
      fCntDown: 0,
    });
    this.d.state.commit();
    return { fCntUp: s.fCntUp, fCntDown: s.fCntDown };
  }

  /** Queue a downlink for the device's next uplink. Returns the queue length. */
  enqueue(device: string, item: QueuedDownlink): number {
    return this.downlinks.enqueue(device, item);
  }

  /** A deduplicated frame: by MType to the join or the data-uplink handler. */
  private frame(phy: Buffer, up: UplinkContext, gateways: number): void {
    this.counters.frames++;
    try {
      const mtype = mtypeOf(phy);
      if (mtype === MType.JoinRequest) this.joins.joinRequest(phy, up);
      else if (mtype === MType.UnconfirmedUp || mtype === MType.ConfirmedUp)
        this.uplinks.dataUp(phy, up, gateways, mtype === MType.ConfirmedUp);
      // Downlinks heard from other networks, proprietary frames, 1.1 rejoins: not ours.
      else this.counters.invalid_frames++;
    } catch (e) {
      // lora-packet throws on truncated or inconsistent frames.
      this.counters.invalid_frames++;
      this.d.log.debug({ err: e, phy: phy.toString("hex") }, "invalid LoRaWAN frame");
    }
  }
}
