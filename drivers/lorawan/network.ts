/**
 * The network-server core: deduplication of copies heard by several concentrators, OTAA joins,
 * data uplinks (MIC with the 32-bit counter, replay refusal, decryption, MAC commands, codec) and
 * the class A downlink that may follow each uplink.
 */
import { randomInt, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { DriverContext, DriverEvent, EventSeverity, Reading } from "../driver.js";
import type { CodecRegistry } from "./codecs.js";
import { GATEWAY_POINTS, gatewayDeviceId, pick, toValue, type DeviceRuntime } from "./devices.js";
import type { DownlinkScheduler, UplinkContext } from "./downlink.js";
import type { GatewayInfo } from "./gateways.js";
import {
  MType,
  buildDataDown,
  buildJoinAccept,
  decryptPayload,
  fullFCnt,
  mtypeOf,
  olderFCnt,
  parse,
  sessionKeys,
  verifyDataMic,
  verifyJoinRequestMic,
  type LoraPacket,
} from "./lora.js";
import { answerMac, parseUplinkMac } from "./mac.js";
import { JOIN_ACCEPT_DELAY1_S } from "./regional.js";
import type { LorawanDriverConfig } from "./schema.js";
import type { GatewayStat, RxPk } from "./semtech.js";
import { parseDatr } from "./semtech.js";
import type { LorawanState, QueuedDownlink, Session } from "./sessions.js";

interface Copy {
  gw: GatewayInfo;
  rx: RxPk;
  receivedAt: number;
}

export interface NetworkDeps {
  cfg: LorawanDriverConfig;
  devices: DeviceRuntime[];
  state: LorawanState;
  codecs: CodecRegistry;
  scheduler: DownlinkScheduler;
  ctx: DriverContext;
  log: Logger;
}

/** How long a processed frame is remembered to drop copies arriving after the window. */
const LATE_COPY_MS = 10_000;

const keyCache = new WeakMap<Session, { nwk: Buffer; app: Buffer }>();
/** Session keys as buffers, decoded once per session object. */
function keysOf(s: Session): { nwk: Buffer; app: Buffer } {
  let k = keyCache.get(s);
  if (!k) {
    k = { nwk: Buffer.from(s.nwkSKey, "hex"), app: Buffer.from(s.appSKey, "hex") };
    keyCache.set(s, k);
  }
  return k;
}

/** Best copy: highest SNR, then highest RSSI (ChirpStack sorts the same way). */
function better(a: Copy, b: Copy): boolean {
  return a.rx.lsnr !== b.rx.lsnr ? a.rx.lsnr > b.rx.lsnr : a.rx.rssi > b.rx.rssi;
}

export class LorawanNetwork {
  readonly counters: Record<string, number> = {
    frames: 0,
    duplicates: 0,
    joins: 0,
    join_unknown: 0,
    uplinks: 0,
    unknown_devaddr: 0,
    mic_failed: 0,
    replays: 0,
    retransmissions: 0,
    devnonce_reused: 0,
    invalid_frames: 0,
    codec_errors: 0,
    decoded: 0,
    downlinks: 0,
  };
  private readonly dedup = new Map<string, { copies: Copy[]; timer: NodeJS.Timeout | undefined }>();
  private readonly recent = new Map<string, { at: number; gws: Set<string> }>();
  private readonly byAddr = new Map<string, DeviceRuntime[]>();
  private readonly byEui = new Map<string, DeviceRuntime>();
  private readonly netId: Buffer;
  private sweep: NodeJS.Timeout | undefined;

  constructor(private readonly d: NetworkDeps) {
    this.netId = Buffer.from(d.cfg.net_id, "hex");
    for (const dev of d.devices) this.byEui.set(dev.devEui, dev);
  }

  /** Restore sessions: ABP from the config (keeping persisted counters), OTAA from the state. */
  init(): void {
    for (const dev of this.d.devices) {
      const a = dev.cfg.activation;
      let s = this.d.state.session(dev.id);
      if (a.type === "abp") {
        if (
          !s ||
          s.activation !== "abp" ||
          s.devAddr !== a.dev_addr ||
          s.nwkSKey !== a.nwk_s_key ||
          s.appSKey !== a.app_s_key
        ) {
          // New or re-keyed ABP device: counters restart (the device must restart them too).
          s = {
            sid: randomUUID(),
            activation: "abp",
            devAddr: a.dev_addr,
            nwkSKey: a.nwk_s_key,
            appSKey: a.app_s_key,
            fCntUp: 0,
            lastFCntUp: -1,
            fCntDown: 0,
          };
          this.d.state.saveSession(dev.id, s);
        }
      } else if (s && s.activation !== "otaa") {
        this.d.state.dropSession(dev.id);
        s = undefined;
      }
      if (s) this.index(dev, s.devAddr);
    }
    this.d.state.commit();
    this.sweep = setInterval(() => {
      const old = Date.now() - LATE_COPY_MS;
      for (const [k, v] of this.recent) if (v.at < old) this.recent.delete(k);
    }, LATE_COPY_MS).unref();
  }

  stop(): void {
    if (this.sweep) clearInterval(this.sweep);
    for (const e of this.dedup.values()) if (e.timer) clearTimeout(e.timer);
    this.dedup.clear();
  }

  private index(dev: DeviceRuntime, devAddr: string): void {
    for (const [addr, list] of this.byAddr) {
      const rest = list.filter((x) => x !== dev);
      if (rest.length !== list.length) {
        if (rest.length) this.byAddr.set(addr, rest);
        else this.byAddr.delete(addr);
      }
    }
    this.byAddr.set(devAddr, [...(this.byAddr.get(devAddr) ?? []), dev]);
  }

  private event(
    type: string,
    severity: EventSeverity,
    message: string,
    device?: string,
    data?: Record<string, unknown>,
  ): void {
    const e: DriverEvent = {
      ts: Date.now(),
      type,
      severity,
      message,
      ...(device !== undefined ? { device } : {}),
      ...(data ? { data } : {}),
    };
    this.d.ctx.event(e);
  }

  // ── reception and deduplication ────────────────────────────────────────────────────────────

  rxpk(gw: GatewayInfo, rx: RxPk, receivedAt: number): void {
    const key = rx.data.toString("base64");
    const copy = { gw, rx, receivedAt };
    const pending = this.dedup.get(key);
    if (pending) {
      pending.copies.push(copy);
      this.counters.duplicates!++;
      return;
    }
    // A late copy comes from another concentrator; the same bytes again from a concentrator that
    // already reported them were sent again (a replay or retransmission): process them.
    const seen = this.recent.get(key);
    if (seen && !seen.gws.has(gw.eui)) {
      seen.gws.add(gw.eui);
      this.counters.duplicates!++;
      return;
    }
    const windowMs = this.d.cfg.dedup_window;
    if (windowMs <= 0) {
      this.recent.set(key, { at: receivedAt, gws: new Set([gw.eui]) });
      this.process([copy]);
      return;
    }
    const entry = { copies: [copy], timer: undefined as NodeJS.Timeout | undefined };
    entry.timer = setTimeout(() => {
      this.dedup.delete(key);
      this.recent.set(key, { at: Date.now(), gws: new Set(entry.copies.map((c) => c.gw.eui)) });
      this.process(entry.copies);
    }, windowMs);
    this.dedup.set(key, entry);
  }

  private process(copies: Copy[]): void {
    this.counters.frames!++;
    let best = copies[0]!;
    // Downlinks need a concentrator that sent PULL_DATA: prefer the best of those.
    for (const c of copies)
      if ((c.gw.pull && !best.gw.pull) || (!!c.gw.pull === !!best.gw.pull && better(c, best)))
        best = c;
    const phy = best.rx.data;
    const up: UplinkContext = {
      gatewayEui: best.gw.eui,
      rx: best.rx,
      receivedAt: copies[0]!.receivedAt,
    };
    try {
      const mtype = mtypeOf(phy);
      if (mtype === MType.JoinRequest) this.join(phy, up);
      else if (mtype === MType.UnconfirmedUp || mtype === MType.ConfirmedUp)
        this.data(phy, up, copies.length, mtype === MType.ConfirmedUp);
      // Downlinks heard from other networks, proprietary frames, 1.1 rejoins: not ours.
      else this.counters.invalid_frames!++;
    } catch (e) {
      // lora-packet throws on truncated or inconsistent frames.
      this.counters.invalid_frames!++;
      this.d.log.debug({ err: e, phy: phy.toString("hex") }, "invalid LoRaWAN frame");
    }
  }

  // ── OTAA ───────────────────────────────────────────────────────────────────────────────────

  private join(phy: Buffer, up: UplinkContext): void {
    if (phy.length !== 23) throw new Error(`Join Request of ${phy.length} bytes`);
    const p = parse(phy);
    const devEui = p.DevEUI!.toString("hex");
    const joinEui = p.AppEUI!.toString("hex");
    const nonce = p.DevNonce!.readUInt16BE(0);
    const dev = this.byEui.get(devEui);
    if (!dev?.appKey) {
      this.counters.join_unknown!++;
      this.d.log.debug({ devEui, joinEui }, "Join Request from an unknown or ABP device");
      return;
    }
    if (dev.joinEui !== joinEui) {
      this.event(
        "lorawan_join_refused",
        "warning",
        `Join Request with JoinEUI ${joinEui}, expected ${dev.joinEui}`,
        dev.id,
        { devEui, joinEui },
      );
      return;
    }
    if (!verifyJoinRequestMic(p, dev.appKey)) {
      this.counters.mic_failed!++;
      this.event(
        "lorawan_mic_failed",
        "warning",
        "Join Request with a wrong MIC (wrong AppKey, or forged)",
        dev.id,
        { devEui },
      );
      return;
    }
    if (this.d.state.devNonceUsed(dev.id, nonce)) {
      this.counters.devnonce_reused!++;
      this.event(
        "lorawan_devnonce_reused",
        "warning",
        `Join Request refused: DevNonce ${nonce} was already used (replayed join, or a device that lost its nonce counter)`,
        dev.id,
        { devEui, devNonce: nonce },
      );
      return;
    }
    this.d.state.recordDevNonce(dev.id, nonce);
    const joinNonce = this.d.state.nextJoinNonce(dev.id);
    const joinNonceBuf = Buffer.alloc(3);
    joinNonceBuf.writeUIntBE(joinNonce, 0, 3);
    const devAddr = this.allocateDevAddr();
    const keys = sessionKeys(dev.appKey, this.netId, joinNonceBuf, p.DevNonce!);
    const s: Session = {
      sid: randomUUID(),
      activation: "otaa",
      devAddr,
      nwkSKey: keys.nwkSKey.toString("hex"),
      appSKey: keys.appSKey.toString("hex"),
      fCntUp: 0,
      lastFCntUp: -1,
      fCntDown: 0,
      joinedAt: Date.now(),
    };
    this.d.state.saveSession(dev.id, s);
    this.index(dev, devAddr);
    this.counters.joins!++;
    const accept = buildJoinAccept(
      {
        joinNonce,
        netId: this.netId,
        devAddr: Buffer.from(devAddr, "hex"),
        rx1DrOffset: 0,
        rx2Dr: this.d.cfg.rx2_dr,
        rxDelay: this.d.cfg.rx1_delay_s,
      },
      dev.appKey,
    );
    this.d.scheduler.send(dev.id, accept, up, JOIN_ACCEPT_DELAY1_S, (r) => {
      if (r.ok)
        this.event(
          "lorawan_join",
          "info",
          `joined (DevAddr ${devAddr}, Join Accept in ${r.window.toUpperCase()})`,
          dev.id,
          { devAddr, devNonce: nonce, window: r.window, gateway: up.gatewayEui },
        );
      else
        this.event(
          "lorawan_join_accept_failed",
          "warning",
          `Join Accept not sent: ${r.error}`,
          dev.id,
          { devAddr, gateway: up.gatewayEui },
        );
    });
  }

  /** A free DevAddr with the NetID's NwkID in its top 7 bits (type 0 NetID, §6.1.1). */
  private allocateDevAddr(): string {
    const nwkId = this.netId.readUIntBE(0, 3) & 0x3f;
    for (;;) {
      const addr = (((nwkId << 25) | randomInt(0, 1 << 25)) >>> 0).toString(16).padStart(8, "0");
      if (!this.byAddr.has(addr)) return addr;
    }
  }

  // ── data frames ────────────────────────────────────────────────────────────────────────────

  private data(phy: Buffer, up: UplinkContext, gateways: number, confirmed: boolean): void {
    const p = parse(phy);
    if (!p.DevAddr || !p.FCnt || p.FCnt.length !== 2)
      throw new Error("data frame without DevAddr/FCnt");
    const addr = p.DevAddr.toString("hex");
    const candidates = this.byAddr.get(addr);
    if (!candidates) {
      // Neighbouring networks' devices are heard all the time: count, do not alarm.
      this.counters.unknown_devaddr!++;
      return;
    }
    const f16 = p.getFCnt()!;
    for (const dev of candidates) {
      const s = this.d.state.session(dev.id);
      if (!s) continue;
      const nwk = keysOf(s).nwk;
      const full = fullFCnt(s.fCntUp, f16);
      if (verifyDataMic(p, nwk, full)) return this.accept(dev, s, p, full, up, gateways, confirmed);
    }
    // No session verifies it with the expected counter: an authentic old frame is a replay.
    for (const dev of candidates) {
      const s = this.d.state.session(dev.id);
      if (!s) continue;
      const old = olderFCnt(s.fCntUp, f16);
      if (old >= 0 && verifyDataMic(p, keysOf(s).nwk, old)) {
        this.counters.replays!++;
        this.event(
          "lorawan_replay_rejected",
          "warning",
          `frame refused: counter ${old} is not above the last accepted ${s.lastFCntUp} (replayed frame, or a device that restarted its counters)`,
          dev.id,
          { fCnt: old, lastFCnt: s.lastFCntUp, devAddr: addr },
        );
        return;
      }
    }
    this.counters.mic_failed!++;
    const devices = candidates.map((c) => c.id);
    this.event(
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
    if (full < s.fCntUp) {
      // Same counter as the last accepted frame: a retransmission (NbTrans > 1), already handled.
      this.counters.retransmissions!++;
      return;
    }
    this.counters.uplinks!++;
    s.fCntUp = (full + 1) >>> 0;
    s.lastFCntUp = full;
    const { nwk, app } = keysOf(s);
    const acked = p.getFCtrlACK() === true;
    const hadPending = s.pendingAck !== undefined;
    const retry = this.settleConfirmed(dev, s, acked);
    if (hadPending) this.d.state.saveSession(dev.id, s);
    else this.d.state.setCounters(dev.id, s);
    dev.lastUplinkAt = up.receivedAt;
    dev.lastFCnt = full;

    const fPort = p.getFPort();
    let macBuf = p.FOpts ?? Buffer.alloc(0);
    let payload: Buffer | undefined;
    if (fPort === 0) macBuf = decryptPayload(p, app, nwk, full);
    else if (fPort !== null && p.FRMPayload && p.FRMPayload.length > 0)
      payload = decryptPayload(p, app, nwk, full);
    const mac = parseUplinkMac(macBuf);
    if (mac.error) this.d.log.warn({ device: dev.id }, `MAC commands: ${mac.error}`);
    if (mac.commands.length)
      this.d.log.debug(
        { device: dev.id, commands: mac.commands.map((c) => c.name) },
        "MAC commands",
      );
    const datr = parseDatr(up.rx.datr);
    const answers = answerMac(mac.commands, {
      ...(datr ? { sf: datr.sf } : {}),
      snr: up.rx.lsnr,
      gateways,
      ...(up.rx.tmms !== undefined ? { gpsMs: up.rx.tmms } : {}),
      receivedAt: up.receivedAt,
    });

    if (retry) this.requeueFront(dev.id, retry);
    const dl = this.prepareDownlink(dev, s, confirmed, answers);

    const ts = up.receivedAt;
    const link: Reading[] = dev.cfg.link_points
      ? [
          { device: dev.id, point: "rssi", ts, value: up.rx.rssi, unit: "dBm", quality: "good" },
          { device: dev.id, point: "snr", ts, value: up.rx.lsnr, unit: "dB", quality: "good" },
        ]
      : [];
    // Act only once the new counters are durable (see sessions.ts).
    this.afterCommit(() => {
      if (dl) this.sendDownlink(dev, up, dl);
      if (payload && fPort !== null) void this.decode(dev, payload, fPort, ts, link);
      else if (link.length) this.emit(dev, link);
    });
  }

  private readonly continuations: (() => void)[] = [];

  /** Run `fn` after the counters changed in this event-loop turn are committed (one write). */
  private afterCommit(fn: () => void): void {
    this.continuations.push(fn);
    if (this.continuations.length > 1) return;
    setImmediate(() => {
      const fns = this.continuations.splice(0);
      try {
        this.d.state.commit();
      } catch (e) {
        // The store cannot persist the counters: do not act on frames we could replay-check no more.
        this.d.log.error({ err: e }, "frame counters not persisted; frames of this turn dropped");
        this.event(
          "lorawan_state_unavailable",
          "error",
          `frame counters cannot be persisted (${(e as Error).message}); ${fns.length} frame(s) dropped`,
        );
        return;
      }
      for (const f of fns) f();
    });
  }

  /** Resolve the confirmed downlink waiting for this uplink's ACK; returns it when it must be resent. */
  private settleConfirmed(
    dev: DeviceRuntime,
    s: Session,
    acked: boolean,
  ): QueuedDownlink | undefined {
    const pending = s.pendingAck;
    if (!pending) return undefined;
    delete s.pendingAck;
    const data = {
      commandId: pending.commandId,
      downlinkId: pending.id,
      attempts: pending.attempts,
    };
    if (acked) {
      this.event(
        "lorawan_downlink_acked",
        "info",
        "confirmed downlink acknowledged by the device",
        dev.id,
        data,
      );
      return undefined;
    }
    if (pending.attempts <= this.d.cfg.confirmed_retries) return pending;
    this.event(
      "lorawan_downlink_nacked",
      "warning",
      `confirmed downlink not acknowledged after ${pending.attempts} transmissions; given up`,
      dev.id,
      data,
    );
    return undefined;
  }

  private requeueFront(device: string, item: QueuedDownlink): void {
    this.d.state.saveQueue(device, [item, ...this.d.state.queue(device)]);
  }

  queueLength(device: string): number {
    return this.d.state.queue(device).length;
  }

  /** Queue a downlink for the device's next uplink. Returns the queue length. */
  enqueue(device: string, item: QueuedDownlink): number {
    const q = [...this.d.state.queue(device), item];
    this.d.state.saveQueue(device, q);
    return q.length;
  }

  /** Reserve the downlink counter and take the next queued item (durable), or nothing to send. */
  private prepareDownlink(
    dev: DeviceRuntime,
    s: Session,
    ackUp: boolean,
    answers: Buffer,
  ): { phy: Buffer; item?: QueuedDownlink; fCnt: number } | undefined {
    const queue = this.d.state.queue(dev.id);
    if (!ackUp && answers.length === 0 && queue.length === 0) return undefined;
    const item = queue[0];
    const fCnt = s.fCntDown;
    s.fCntDown = (s.fCntDown + 1) >>> 0;
    this.d.state.setCounters(dev.id, s);
    if (item) this.d.state.saveQueue(dev.id, queue.slice(1));
    const phy = buildDataDown(
      {
        devAddr: Buffer.from(s.devAddr, "hex"),
        fCnt32: fCnt,
        confirmed: item?.confirmed ?? false,
        ack: ackUp,
        fPending: queue.length > 1,
        fOpts: answers.subarray(0, 15),
        ...(item ? { fPort: item.fPort, payload: Buffer.from(item.bytes, "hex") } : {}),
      },
      keysOf(s).app,
      keysOf(s).nwk,
    );
    return { phy, fCnt, ...(item ? { item } : {}) };
  }

  private sendDownlink(
    dev: DeviceRuntime,
    up: UplinkContext,
    dl: { phy: Buffer; item?: QueuedDownlink; fCnt: number },
  ): void {
    const { item, fCnt } = dl;
    this.counters.downlinks!++;
    this.d.scheduler.send(dev.id, dl.phy, up, this.d.cfg.rx1_delay_s, (r) => {
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
        this.event(
          "lorawan_downlink_failed",
          "warning",
          `downlink not transmitted (${r.error}); kept for the next uplink`,
          dev.id,
          data,
        );
        return;
      }
      item.attempts++;
      this.event(
        "lorawan_downlink_sent",
        "info",
        `downlink sent in ${r.window.toUpperCase()}${item.confirmed ? ", waiting for the device's ACK" : ""}`,
        dev.id,
        data,
      );
      if (item.confirmed) {
        const cur = this.d.state.session(dev.id);
        if (cur) this.d.state.saveSession(dev.id, { ...cur, pendingAck: item });
      }
    });
  }

  // ── codec and readings ─────────────────────────────────────────────────────────────────────

  private async decode(
    dev: DeviceRuntime,
    payload: Buffer,
    fPort: number,
    ts: number,
    link: Reading[],
  ): Promise<void> {
    let r;
    try {
      r = await this.d.codecs
        .get(dev.codec)
        .decode({ bytes: payload, fPort, recvTime: new Date(ts) });
    } catch (e) {
      r = {
        ok: false as const,
        kind: "crashed" as const,
        error: (e as Error).message,
        warnings: [],
      };
    }
    if (!r.ok) {
      this.counters.codec_errors!++;
      dev.errorCount++;
      dev.lastError = `codec ${dev.codec}: ${r.error}`;
      dev.lastErrorTs = ts;
      this.event(
        "lorawan_codec_error",
        "warning",
        `payload not decoded by codec ${dev.codec} (${r.kind}): ${r.error}`,
        dev.id,
        { codec: dev.codec, kind: r.kind, fPort, payload: payload.toString("hex") },
      );
      const bad: Reading[] = dev.points
        .filter((pt) => !pt.writable)
        .map((pt) => ({
          device: dev.id,
          point: pt.id,
          ts,
          value: null,
          ...(pt.unit ? { unit: pt.unit } : {}),
          quality: "codec_error" as const,
          detail: `${r.kind}: ${r.error}`,
        }));
      this.emit(dev, [...bad, ...link]);
      return;
    }
    this.counters.decoded!++;
    if (r.warnings.length)
      this.d.log.info({ device: dev.id, warnings: r.warnings }, "codec warnings");
    const out: Reading[] = [];
    for (const pt of dev.points) {
      const raw = pick(r.value, pt.field ?? pt.id);
      if (raw === undefined) continue; // not in this frame (codecs send different fields per frame)
      const value = toValue(raw, pt);
      if (value === undefined) {
        out.push({
          device: dev.id,
          point: pt.id,
          ts,
          value: null,
          quality: "codec_error",
          detail: `field ${pt.field ?? pt.id} is not a number, boolean or string`,
        });
        continue;
      }
      out.push({
        device: dev.id,
        point: pt.id,
        ts,
        value,
        ...(pt.unit ? { unit: pt.unit } : {}),
        quality: "good",
      });
    }
    this.emit(dev, [...out, ...link]);
  }

  private emit(dev: DeviceRuntime, readings: Reading[]): void {
    for (const r of readings) dev.last.set(r.point, r);
    if (readings.length) this.d.ctx.emit(readings);
  }

  stat(gw: GatewayInfo, stat: GatewayStat, receivedAt: number): void {
    const device = gatewayDeviceId(gw.eui);
    const out: Reading[] = [];
    for (const p of GATEWAY_POINTS) {
      const v = (stat as Record<string, unknown>)[p.field];
      if (typeof v === "number" && Number.isFinite(v))
        out.push({
          device,
          point: p.id,
          ts: receivedAt,
          value: v,
          ...(p.unit ? { unit: p.unit } : {}),
          quality: "good",
        });
    }
    if (out.length) this.d.ctx.emit(out);
  }
}
