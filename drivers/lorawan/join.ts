/**
 * OTAA (LoRaWAN 1.0.4 §6.2): a Join Request is checked (known DevEUI with an AppKey, expected
 * JoinEUI, MIC with the AppKey, DevNonce never used before) and answered with a Join Accept in
 * RX1 (tmst + 5 s) or RX2 through the scheduler: a fresh DevAddr carrying the NetID's NwkID, the
 * next JoinNonce, and a new session whose keys are derived here and stored before the answer.
 */
import { randomInt, randomUUID } from "node:crypto";
import type { DeviceIndex } from "./device-index.js";
import type { DownlinkScheduler, UplinkContext } from "./downlink.js";
import { buildJoinAccept, cfListEu868, parse, sessionKeys, verifyJoinRequestMic } from "./lora.js";
import type { NetContext } from "./network-context.js";
import { JOIN_ACCEPT_DELAY1_S } from "./regional.js";
import type { Session } from "./sessions.js";

export class JoinHandler {
  private readonly netId: Buffer;
  private readonly cfList: Buffer | undefined;

  constructor(
    private readonly net: NetContext,
    private readonly index: DeviceIndex,
    private readonly scheduler: DownlinkScheduler,
  ) {
    this.netId = Buffer.from(net.cfg.net_id, "hex");
    const extra = net.cfg.extra_channels;
    this.cfList = extra.length ? cfListEu868(extra) : undefined;
  }

  joinRequest(phy: Buffer, up: UplinkContext): void {
    const { state, counters, event } = this.net;
    if (phy.length !== 23) throw new Error(`Join Request of ${phy.length} bytes`);
    const p = parse(phy);
    const devEui = p.DevEUI!.toString("hex");
    const joinEui = p.AppEUI!.toString("hex");
    const nonce = p.DevNonce!.readUInt16BE(0);
    const dev = this.index.byDevEui(devEui);
    if (!dev?.appKey) {
      counters.join_unknown++;
      this.net.log.debug({ devEui, joinEui }, "Join Request from an unknown or ABP device");
      return;
    }
    if (dev.joinEui !== joinEui) {
      this.net.throttled.event(
        `joineui:${dev.id}`,
        "lorawan_join_refused",
        "warning",
        `Join Request with JoinEUI ${joinEui}, expected ${dev.joinEui}`,
        dev.id,
        { devEui, joinEui },
      );
      return;
    }
    if (!verifyJoinRequestMic(p, dev.appKey)) {
      counters.mic_failed++;
      this.net.throttled.event(
        `join-mic:${dev.id}`,
        "lorawan_mic_failed",
        "warning",
        "Join Request with a wrong MIC (wrong AppKey, or forged)",
        dev.id,
        { devEui },
      );
      return;
    }
    if (state.devNonceUsed(dev.id, nonce)) {
      counters.devnonce_reused++;
      this.net.throttled.event(
        `devnonce:${dev.id}`,
        "lorawan_devnonce_reused",
        "warning",
        `Join Request refused: DevNonce ${nonce} was already used (replayed join, or a device that lost its nonce counter)`,
        dev.id,
        { devEui, devNonce: nonce },
      );
      return;
    }
    state.recordDevNonce(dev.id, nonce);
    const joinNonce = state.nextJoinNonce(dev.id);
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
    state.saveSession(dev.id, s);
    this.index.bind(dev, devAddr);
    counters.joins++;
    const accept = buildJoinAccept(
      {
        joinNonce,
        netId: this.netId,
        devAddr: Buffer.from(devAddr, "hex"),
        rx1DrOffset: 0,
        rx2Dr: this.net.cfg.rx2_dr,
        rxDelay: this.net.cfg.rx1_delay_s,
        ...(this.cfList ? { cfList: this.cfList } : {}),
      },
      dev.appKey,
    );
    this.scheduler.send(dev.id, accept, up, JOIN_ACCEPT_DELAY1_S, (r) => {
      if (r.ok)
        event(
          "lorawan_join",
          "info",
          `joined (DevAddr ${devAddr}, Join Accept in ${r.window.toUpperCase()})`,
          dev.id,
          { devAddr, devNonce: nonce, window: r.window, gateway: up.gatewayEui },
        );
      else
        event("lorawan_join_accept_failed", "warning", `Join Accept not sent: ${r.error}`, dev.id, {
          devAddr,
          gateway: up.gatewayEui,
        });
    });
  }

  /** A free DevAddr with the NetID's NwkID in its top 7 bits (type 0 NetID, §6.1.1). */
  private allocateDevAddr(): string {
    const nwkId = this.netId.readUIntBE(0, 3) & 0x3f;
    for (;;) {
      const addr = (((nwkId << 25) | randomInt(0, 1 << 25)) >>> 0).toString(16).padStart(8, "0");
      if (!this.index.hasDevAddr(addr)) return addr;
    }
  }
}
