/**
 * Data uplinks (README.md, "Frame security"): find the session whose NwkSKey verifies the MIC
 * with the 32-bit counter rebuilt from the 16 transmitted bits; refuse authentic old frames
 * (replays) and count retransmissions; advance the counters, decrypt FRMPayload (or FPort 0 MAC
 * commands), answer MAC commands, settle a confirmed downlink and prepare the downlink that
 * answers this uplink. Nothing is acted upon (readings, downlinks) before the new counters are
 * durable: the frames of one event-loop turn share one commit (see sessions.ts), so a restart
 * never reopens a replay window.
 */
import type { DeviceIndex } from "./device-index.js";
import type { DeviceRuntime } from "./devices.js";
import type { UplinkContext } from "./downlink.js";
import type { DownlinkQueue } from "./downlink-queue.js";
import {
  decryptPayload,
  fullFCnt,
  olderFCnt,
  parse,
  verifyDataMic,
  type LoraPacket,
} from "./lora.js";
import { answerMacCommands, parseUplinkMac } from "./mac.js";
import type { NetContext } from "./network-context.js";
import type { ReadingMaker } from "./readings.js";
import { parseDatr } from "./semtech.js";
import { keysOf, type Session } from "./sessions.js";

export class UplinkHandler {
  private readonly continuations: (() => void)[] = [];

  constructor(
    private readonly net: NetContext,
    private readonly index: DeviceIndex,
    private readonly downlinks: DownlinkQueue,
    private readonly readings: ReadingMaker,
  ) {}

  dataUp(phy: Buffer, up: UplinkContext, gateways: number, confirmed: boolean): void {
    const { state, counters, throttled } = this.net;
    const p = parse(phy);
    if (!p.DevAddr || !p.FCnt || p.FCnt.length !== 2)
      throw new Error("data frame without DevAddr/FCnt");
    const addr = p.DevAddr.toString("hex");
    const candidates = this.index.byDevAddr(addr);
    if (!candidates) {
      // Neighbouring networks' devices are heard all the time: count, do not alarm.
      counters.unknown_devaddr++;
      return;
    }
    const f16 = p.getFCnt()!;
    for (const dev of candidates) {
      const s = state.session(dev.id);
      if (!s) continue;
      const nwk = keysOf(s).nwk;
      const full = fullFCnt(s.fCntUp, f16);
      if (verifyDataMic(p, nwk, full)) return this.accept(dev, s, p, full, up, gateways, confirmed);
    }
    // No session verifies it with the expected counter: an authentic old frame is a replay.
    for (const dev of candidates) {
      const s = state.session(dev.id);
      if (!s) continue;
      const old = olderFCnt(s.fCntUp, f16);
      if (old >= 0 && verifyDataMic(p, keysOf(s).nwk, old)) {
        counters.replays++;
        throttled.event(
          `replay:${dev.id}`,
          "lorawan_replay_rejected",
          "warning",
          `frame refused: counter ${old} is not above the last accepted ${s.lastFCntUp} (replayed frame, or a device that restarted its counters)`,
          dev.id,
          { fCnt: old, lastFCnt: s.lastFCntUp, devAddr: addr },
        );
        return;
      }
    }
    counters.mic_failed++;
    const devices = candidates.map((c) => c.id);
    // Forged frames cost nothing to send: one event, then a summary per event_interval.
    throttled.event(
      `mic:${addr}`,
      "lorawan_mic_failed",
      "warning",
      `frame for DevAddr ${addr} refused: wrong MIC (wrong keys, corrupted or forged frame)`,
      devices.length === 1 ? devices[0] : undefined,
      { devAddr: addr, fCnt16: f16, devices },
    );
  }

  private accept(
    dev: DeviceRuntime,
    s: Session,
    p: LoraPacket,
    full: number,
    up: UplinkContext,
    gateways: number,
    confirmed: boolean,
  ): void {
    const { state, counters } = this.net;
    if (full < s.fCntUp) {
      // Same counter as the last accepted frame: a retransmission (NbTrans > 1), already handled.
      counters.retransmissions++;
      return;
    }
    counters.uplinks++;
    s.fCntUp = (full + 1) >>> 0;
    s.lastFCntUp = full;
    const { nwk, app } = keysOf(s);
    const acked = p.getFCtrlACK() === true;
    const hadPending = s.pendingAck !== undefined;
    const retry = this.downlinks.settleConfirmed(dev, s, acked);
    if (hadPending) state.saveSession(dev.id, s);
    else state.setCounters(dev.id, s);
    dev.lastUplinkAt = up.receivedAt;
    dev.lastFCnt = full;

    const fPort = p.getFPort();
    let macBuf = p.FOpts ?? Buffer.alloc(0);
    let payload: Buffer | undefined;
    if (fPort === 0) macBuf = decryptPayload(p, app, nwk, full);
    else if (fPort !== null && p.FRMPayload && p.FRMPayload.length > 0)
      payload = decryptPayload(p, app, nwk, full);
    const answers = this.answerMac(dev, macBuf, up, gateways);

    if (retry) this.downlinks.requeueFront(dev.id, retry);
    const dl = this.downlinks.prepare(dev, s, confirmed, answers, up);

    const ts = up.receivedAt;
    const link = this.readings.link(dev, up);
    // Act only once the new counters are durable (see sessions.ts).
    this.afterCommit(() => {
      if (dl) this.downlinks.send(dev, up, dl);
      if (payload && fPort !== null) void this.readings.decode(dev, payload, fPort, ts, link);
      else if (link.length) this.readings.emit(dev, link);
    });
  }

  /** The MAC commands of this uplink (FOpts or FPort 0), logged, and the answers they call for. */
  private answerMac(
    dev: DeviceRuntime,
    macBuf: Buffer,
    up: UplinkContext,
    gateways: number,
  ): Buffer[] {
    const { log } = this.net;
    const mac = parseUplinkMac(macBuf);
    if (mac.error) log.warn({ device: dev.id }, `MAC commands: ${mac.error}`);
    if (mac.commands.length)
      log.debug({ device: dev.id, commands: mac.commands.map((c) => c.name) }, "MAC commands");
    const datr = parseDatr(up.rx.datr);
    return answerMacCommands(mac.commands, {
      ...(datr ? { sf: datr.sf } : {}),
      snr: up.rx.lsnr,
      gateways,
      ...(up.rx.tmms !== undefined ? { gpsMs: up.rx.tmms } : {}),
      receivedAt: up.receivedAt,
    });
  }

  /** Run `fn` after the counters changed in this event-loop turn are committed (one write). */
  private afterCommit(fn: () => void): void {
    this.continuations.push(fn);
    if (this.continuations.length > 1) return;
    setImmediate(() => {
      const fns = this.continuations.splice(0);
      try {
        this.net.state.commit();
      } catch (e) {
        // The store cannot persist the counters: do not act on frames we could replay-check no more.
        this.net.log.error({ err: e }, "frame counters not persisted; frames of this turn dropped");
        this.net.event(
          "lorawan_state_unavailable",
          "error",
          `frame counters cannot be persisted (${(e as Error).message}); ${fns.length} frame(s) dropped`,
        );
        return;
      }
      for (const f of fns) f();
    });
  }
}
