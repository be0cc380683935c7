/**
 * The network side of class A downlinks (README.md, "Class A downlinks"): the durable per-device
 * queue filled by `write`, the frame that answers an uplink (the next queued item, the ACK of a
 * confirmed uplink, MAC answers in FOpts, FPending when more is queued, the downlink counter
 * reserved before it leaves), and the tracking of confirmed downlinks until the device ACKs them
 * or `confirmed_retries` resends are spent. When and through which window a frame leaves is
 * downlink.ts's job; a frame that cannot leave goes back to the head of the queue.
 */
import type { DeviceRuntime } from "./devices.js";
import type { DownlinkScheduler, UplinkContext } from "./downlink.js";
import { buildDataDown } from "./lora.js";
import { wholeCommands } from "./mac.js";
import { EU868_DATR, maxPayload } from "./regional.js";
import type { NetContext } from "./network-context.js";
import { keysOf, type QueuedDownlink, type Session } from "./sessions.js";

/** A data downlink built for one uplink, its counter already reserved. */
export interface PreparedDownlink {
  phy: Buffer;
  item?: QueuedDownlink;
  fCnt: number;
}

export class DownlinkQueue {
  constructor(
    private readonly net: NetContext,
    private readonly scheduler: DownlinkScheduler,
  ) {}

  length(device: string): number {
    return this.net.state.queue(device).length;
  }

  /** Queue a downlink for the device's next uplink. Returns the queue length. */
  enqueue(device: string, item: QueuedDownlink): number {
    const q = [...this.net.state.queue(device), item];
    this.net.state.saveQueue(device, q);
    return q.length;
  }

  requeueFront(device: string, item: QueuedDownlink): void {
    this.net.state.saveQueue(device, [item, ...this.net.state.queue(device)]);
  }

  /** Resolve the confirmed downlink waiting for this uplink's ACK; returns it when it must be resent. */
  settleConfirmed(dev: DeviceRuntime, s: Session, acked: boolean): QueuedDownlink | undefined {
    const pending = s.pendingAck;
    if (!pending) return undefined;
    delete s.pendingAck;
    const data = {
      commandId: pending.commandId,
      downlinkId: pending.id,
      attempts: pending.attempts,
    };
    if (acked) {
      this.net.event(
        "lorawan_downlink_acked",
        "info",
        "confirmed downlink acknowledged by the device",
        dev.id,
        data,
      );
      return undefined;
    }
    if (pending.attempts <= this.net.cfg.confirmed_retries) return pending;
    this.net.event(
      "lorawan_downlink_nacked",
      "warning",
      `confirmed downlink not acknowledged after ${pending.attempts} transmissions; given up`,
      dev.id,
      data,
    );
    return undefined;
  }

  /**
   * Reserve the downlink counter and take the next queued item (durable), or nothing to send.
   * MAC answers go whole (a command is never cut): in FOpts when they fit its 15 bytes, else in
   * an FPort 0 payload of their own (§4.3.1.6: never in both), the queued item then waiting for
   * the next uplink with FPending set — ChirpStack does the same. Answers beyond what FPort 0
   * can carry at this data rate wait for the next downlink (`dev.macBacklog`).
   */
  prepare(
    dev: DeviceRuntime,
    s: Session,
    ackUp: boolean,
    answers: readonly Buffer[],
    up?: UplinkContext,
  ): PreparedDownlink | undefined {
    const { state } = this.net;
    const queue = state.queue(dev.id);
    const mac = [...dev.macBacklog.splice(0), ...answers];
    if (!ackUp && mac.length === 0 && queue.length === 0) return undefined;
    const macLen = mac.reduce((n, b) => n + b.length, 0);
    const inPort0 = macLen > 15;
    let macOut = mac;
    if (inPort0) {
      const dr = up ? EU868_DATR.indexOf(up.rx.datr as (typeof EU868_DATR)[number]) : -1;
      // The frame may fall back to RX2: fit both windows' data rates.
      const room = Math.min(maxPayload(Math.max(0, dr)), maxPayload(this.net.cfg.rx2_dr));
      const n = wholeCommands(mac, room);
      macOut = mac.slice(0, n);
      // Bounded: answers only come from requests, a few per uplink.
      dev.macBacklog.push(...mac.slice(n).slice(0, 16));
    }
    const item = inPort0 ? undefined : queue[0];
    const fCnt = s.fCntDown;
    s.fCntDown = (s.fCntDown + 1) >>> 0;
    state.setCounters(dev.id, s);
    if (item) state.saveQueue(dev.id, queue.slice(1));
    const { app, nwk } = keysOf(s);
    const phy = buildDataDown(
      {
        devAddr: Buffer.from(s.devAddr, "hex"),
        fCnt32: fCnt,
        confirmed: item?.confirmed ?? false,
        ack: ackUp,
        fPending: queue.length > (item ? 1 : 0) || dev.macBacklog.length > 0,
        ...(inPort0
          ? { fPort: 0, payload: Buffer.concat(macOut) }
          : { fOpts: Buffer.concat(macOut) }),
        ...(item ? { fPort: item.fPort, payload: Buffer.from(item.bytes, "hex") } : {}),
      },
      app,
      nwk,
    );
    return { phy, fCnt, ...(item ? { item } : {}) };
  }

  /** Hand a prepared downlink to the scheduler and report what became of its queued item. */
  send(dev: DeviceRuntime, up: UplinkContext, dl: PreparedDownlink): void {
    const { item, fCnt } = dl;
    const { state, event } = this.net;
    this.net.counters.downlinks++;
    this.scheduler.send(dev.id, dl.phy, up, this.net.cfg.rx1_delay_s, (r) => {
      if (!item) return;
      const data = {
        commandId: item.commandId,
        downlinkId: item.id,
        window: r.window,
        fCntDown: fCnt,
      };
      if (!r.ok) {
        // Not lost: back at the head of the queue for the next uplink.
        this.requeueFront(dev.id, item);
        event(
          "lorawan_downlink_failed",
          "warning",
          `downlink not transmitted (${r.error}); kept for the next uplink`,
          dev.id,
          data,
        );
        return;
      }
      item.attempts++;
      event(
        "lorawan_downlink_sent",
        "info",
        `downlink sent in ${r.window.toUpperCase()}${item.confirmed ? ", waiting for the device's ACK" : ""}`,
        dev.id,
        data,
      );
      if (item.confirmed) {
        const cur = state.session(dev.id);
        if (cur) state.saveSession(dev.id, { ...cur, pendingAck: item });
      }
    });
  }
}
