/**
 * Class A downlinks (LoRaWAN 1.0.4 §3.3): after an uplink the device listens in RX1 (same channel
 * and data rate, tmst + RECEIVE_DELAY1) and RX2 (869.525 MHz DR0, one second later). This module
 * turns a frame into a `txpk` for the concentrator that heard the uplink best, picks RX1 when the
 * PULL_RESP can still arrive in time (else RX2), and falls back to RX2 when TX_ACK reports RX1
 * as too late or colliding.
 */
import type { GatewayServer } from "./gateways.js";
import { CODING_RATE, TX_MARGIN_MS, datrOfDr } from "./regional.js";
import type { RxPk, TxPk } from "./semtech.js";

export interface RxWindowParams {
  rx1DelayS: number;
  rx2Frequency: number;
  rx2Dr: number;
  txPower: number;
}

/** The uplink a downlink answers: best copy and its concentrator. */
export interface UplinkContext {
  gatewayEui: string;
  rx: RxPk;
  receivedAt: number;
}

export type Window = "rx1" | "rx2";

interface InFlight {
  device: string;
  window: Window;
  up: UplinkContext;
  phy: Buffer;
  delayS: number;
  onResult: (r: { ok: boolean; window: Window; error?: string }) => void;
}

export class DownlinkScheduler {
  private readonly inFlight = new Map<number, InFlight>();
  readonly counters = { rx1: 0, rx2: 0, rx2_fallback: 0, too_late: 0, tx_failed: 0, tx_ok: 0 };

  constructor(
    private readonly server: GatewayServer,
    private readonly params: RxWindowParams,
  ) {}

  txpk(phy: Buffer, up: UplinkContext, window: Window, delayS: number): TxPk {
    const rx1 = window === "rx1";
    return {
      imme: false,
      tmst: (up.rx.tmst + (delayS + (rx1 ? 0 : 1)) * 1_000_000) >>> 0,
      freq: rx1 ? up.rx.freq : this.params.rx2Frequency,
      rfch: 0,
      powe: this.params.txPower,
      modu: "LORA",
      // RX1 data rate = uplink data rate with RX1DROffset 0 (we never change it).
      datr: rx1 ? up.rx.datr : datrOfDr(this.params.rx2Dr),
      codr: CODING_RATE,
      ipol: true,
      size: phy.length,
      data: phy.toString("base64"),
    };
  }

  /** Which window can still be reached, given the time already spent since the uplink. */
  windowFor(up: UplinkContext, delayS: number, now = Date.now()): Window | undefined {
    const elapsed = now - up.receivedAt;
    if (elapsed < delayS * 1000 - TX_MARGIN_MS) return "rx1";
    if (elapsed < (delayS + 1) * 1000 - TX_MARGIN_MS) return "rx2";
    return undefined;
  }

  /**
   * Send `phy` in the first reachable window. `onResult` is called once: on TX_ACK (protocol v2),
   * at once for v1 concentrators (they send no TX_ACK), or with an error when no window is left.
   */
  send(
    device: string,
    phy: Buffer,
    up: UplinkContext,
    delayS: number,
    onResult: InFlight["onResult"],
  ): void {
    const window = this.windowFor(up, delayS);
    if (!window) {
      this.counters.too_late++;
      onResult({ ok: false, window: "rx2", error: "too late for RX1 and RX2" });
      return;
    }
    this.transmit({ device, window, up, phy, delayS, onResult });
  }

  private transmit(f: InFlight): void {
    let token: number;
    try {
      token = this.server.sendTxpk(f.up.gatewayEui, this.txpk(f.phy, f.up, f.window, f.delayS));
    } catch (e) {
      this.counters.tx_failed++;
      f.onResult({ ok: false, window: f.window, error: (e as Error).message });
      return;
    }
    this.counters[f.window]++;
    const gw = this.server.gateways.get(f.up.gatewayEui);
    if (gw && gw.version < 2) {
      this.counters.tx_ok++;
      f.onResult({ ok: true, window: f.window });
      return;
    }
    this.inFlight.set(token, f);
    // A v2 forwarder that never answers: forget the entry after both windows have passed.
    setTimeout(
      () => {
        if (this.inFlight.get(token) === f) {
          this.inFlight.delete(token);
          f.onResult({ ok: true, window: f.window });
        }
      },
      (f.delayS + 3) * 1000,
    ).unref();
  }

  /** TX_ACK from a concentrator (PROTOCOL.TXT §6). */
  txAck(token: number, error: string): void {
    const f = this.inFlight.get(token);
    if (!f) return;
    this.inFlight.delete(token);
    if (error === "NONE") {
      this.counters.tx_ok++;
      f.onResult({ ok: true, window: f.window });
      return;
    }
    // RX1 refused (late, collision, frequency): RX2 is one second later on another channel.
    if (f.window === "rx1" && Date.now() - f.up.receivedAt < (f.delayS + 1) * 1000 - TX_MARGIN_MS) {
      this.counters.rx2_fallback++;
      this.transmit({ ...f, window: "rx2" });
      return;
    }
    this.counters.tx_failed++;
    f.onResult({ ok: false, window: f.window, error });
  }

  clear(): void {
    this.inFlight.clear();
  }
}
