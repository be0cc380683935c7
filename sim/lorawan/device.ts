/**
 * A simulated class A end device that does the device side for real (LoRaWAN 1.0.x): OTAA join
 * (Join Request, decryption and MIC check of the Join Accept, session key derivation), encrypted
 * uplinks with increasing 32-bit counters, MAC requests, and reception of downlinks in RX1/RX2
 * (MIC, counter, decryption, ACK of confirmed downlinks in the next uplink).
 */
import { performance } from "node:perf_hooks";
import {
  buildDataUp,
  buildJoinRequest,
  decryptPayload,
  fullFCnt,
  openJoinAccept,
  parse,
  sessionKeys,
  verifyDataMic,
} from "../../drivers/lorawan/lora.js";
import { parseDownlinkMac, type MacCommand } from "../../drivers/lorawan/mac.js";
import { EU868_DATR } from "../../drivers/lorawan/regional.js";
import type { AirFrame, SimForwarder } from "./forwarder.js";

export interface SimDeviceKeys {
  devEui: string;
  joinEui?: string;
  appKey?: string;
  /** ABP */
  devAddr?: string;
  nwkSKey?: string;
  appSKey?: string;
}

export interface ReceivedDownlink {
  window: "rx1" | "rx2";
  fCnt: number;
  confirmed: boolean;
  ack: boolean;
  fPending: boolean;
  fPort: number | null;
  payload: Buffer;
  mac: MacCommand[];
}

/** The air between devices and concentrators: every concentrator hears every device. */
export class SimRadio {
  readonly forwarders: SimForwarder[] = [];
  private readonly listeners = new Set<(f: AirFrame) => void>();
  /** Per-concentrator signal (rssi, snr) for each transmission; default -60 dBm / 9 dB. */
  signal: (gwIndex: number) => { rssi: number; lsnr: number } = () => ({ rssi: -60, lsnr: 9 });

  /** For SimForwarder.onAir. */
  readonly air = (f: AirFrame): void => {
    for (const l of this.listeners) l(f);
  };

  listen(l: (f: AirFrame) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Transmit from a device: every concentrator forwards it. Resolves once all are acknowledged. */
  async transmit(
    phy: Buffer,
    freq: number,
    datr: string,
    opts: { tmms?: number } = {},
  ): Promise<void> {
    await Promise.all(
      this.forwarders.map((fw, i) => fw.push(phy, { freq, datr, ...this.signal(i) }, opts)),
    );
  }
}

const RX_TOLERANCE_MS = 80;
const RX2 = { freq: 869.525, datr: EU868_DATR[0] };
const CHANNELS = [868.1, 868.3, 868.5];

export class SimDevice {
  devAddr: Buffer | undefined;
  nwkSKey: Buffer | undefined;
  appSKey: Buffer | undefined;
  fCntUp = 0;
  /** Next expected downlink counter. */
  fCntDown = 0;
  devNonce: number;
  rx1DelayS = 1;
  datr: string = EU868_DATR[5];
  private ackNext = false;
  readonly downlinks: ReceivedDownlink[] = [];

  constructor(
    readonly keys: SimDeviceKeys,
    public radio: SimRadio,
    opts: { devNonce?: number } = {},
  ) {
    this.devNonce = opts.devNonce ?? 1;
    if (keys.devAddr && keys.nwkSKey && keys.appSKey) {
      this.devAddr = Buffer.from(keys.devAddr, "hex");
      this.nwkSKey = Buffer.from(keys.nwkSKey, "hex");
      this.appSKey = Buffer.from(keys.appSKey, "hex");
    }
  }

  get joined(): boolean {
    return this.devAddr !== undefined;
  }

  private channel(): number {
    return CHANNELS[(this.fCntUp + this.devNonce) % CHANNELS.length]!;
  }

  /** Collect frames on the air during [at-tol, at+tol] of each window; resolves after the last. */
  private receive(
    windows: { name: "rx1" | "rx2"; at: number; freq: number; datr: string }[],
    accept: (f: AirFrame, w: "rx1" | "rx2") => boolean,
  ): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      const stop = this.radio.listen((f) => {
        if (done) return;
        for (const w of windows) {
          if (
            Math.abs(f.at - w.at) <= RX_TOLERANCE_MS &&
            f.freq === w.freq &&
            f.datr === w.datr &&
            accept(f, w.name)
          ) {
            // A class A device closes its windows once it received a frame for itself (§3.3.7).
            done = true;
            stop();
            return resolve();
          }
        }
      });
      const last = Math.max(...windows.map((w) => w.at));
      setTimeout(
        () => {
          done = true;
          stop();
          resolve();
        },
        last - performance.now() + RX_TOLERANCE_MS + 50,
      ).unref();
    });
  }

  /** Extra channels (MHz) from the last Join Accept's CFList. */
  extraChannels: number[] = [];

  /** OTAA join; resolves true when a valid Join Accept arrived in RX1 or RX2. */
  async join(opts: { devNonce?: number; listen?: boolean } = {}): Promise<boolean> {
    const { devEui, joinEui, appKey } = this.keys;
    if (!joinEui || !appKey) throw new Error("not an OTAA device");
    const key = Buffer.from(appKey, "hex");
    const nonce = opts.devNonce ?? this.devNonce;
    this.devNonce = (nonce + 1) & 0xffff;
    const phy = buildJoinRequest(
      Buffer.from(joinEui, "hex"),
      Buffer.from(devEui, "hex"),
      nonce,
      key,
    );
    const freq = this.channel();
    const sentAt = performance.now();
    await this.radio.transmit(phy, freq, this.datr);
    if (opts.listen === false) return false;
    const nonceBuf = Buffer.alloc(2);
    nonceBuf.writeUInt16BE(nonce, 0);
    let ok = false;
    await this.receive(
      [
        { name: "rx1", at: sentAt + 5000, freq, datr: this.datr },
        { name: "rx2", at: sentAt + 6000, ...RX2 },
      ],
      (f) => {
        if (f.phy.length < 17 || f.phy[0]! >> 5 !== 1) return false;
        let ja;
        try {
          ja = openJoinAccept(f.phy, key);
        } catch {
          return false;
        }
        if (!ja.micOk) return false;
        const k = sessionKeys(key, ja.netId, ja.joinNonce, nonceBuf);
        this.devAddr = ja.devAddr;
        this.nwkSKey = k.nwkSKey;
        this.appSKey = k.appSKey;
        this.fCntUp = 0;
        this.fCntDown = 0;
        this.rx1DelayS = ja.rxDelay || 1;
        // CFList type 0 (RP002 §2.4.4): five 24-bit LE frequencies in 100 Hz, 0 = unused.
        this.extraChannels = [];
        if (ja.cfList.length === 16 && ja.cfList[15] === 0)
          for (let i = 0; i < 15; i += 3) {
            const f = ja.cfList.readUIntLE(i, 3);
            if (f) this.extraChannels.push(f / 10_000);
          }
        ok = true;
        return true;
      },
    );
    return ok;
  }

  /** Build the next uplink frame (advances the counter) without sending it. */
  frame(
    fPort: number | undefined,
    payload: Buffer | undefined,
    opts: { confirmed?: boolean; mac?: Buffer } = {},
  ): Buffer {
    if (!this.devAddr || !this.nwkSKey || !this.appSKey) throw new Error("device not joined");
    const phy = buildDataUp(
      {
        devAddr: this.devAddr,
        fCnt32: this.fCntUp,
        confirmed: opts.confirmed ?? false,
        ack: this.ackNext,
        ...(opts.mac ? { fOpts: opts.mac } : {}),
        ...(fPort !== undefined ? { fPort, payload: payload ?? Buffer.alloc(0) } : {}),
      },
      this.appSKey,
      this.nwkSKey,
    );
    this.fCntUp = (this.fCntUp + 1) >>> 0;
    this.ackNext = false;
    return phy;
  }

  /**
   * Send an uplink and listen in RX1/RX2. Resolves with the downlink received, if any.
   * `mac` carries MAC requests in FOpts (e.g. 02 LinkCheckReq, 0D DeviceTimeReq).
   */
  async uplink(
    fPort: number | undefined,
    payload: Buffer | undefined,
    opts: { confirmed?: boolean; mac?: Buffer; listen?: boolean; tmms?: number } = {},
  ): Promise<ReceivedDownlink | undefined> {
    const phy = this.frame(fPort, payload, opts);
    return this.send(phy, opts);
  }

  /** Put an already built frame on the air (also used to replay one). */
  async send(
    phy: Buffer,
    opts: { listen?: boolean; tmms?: number } = {},
  ): Promise<ReceivedDownlink | undefined> {
    const freq = this.channel();
    const sentAt = performance.now();
    await this.radio.transmit(
      phy,
      freq,
      this.datr,
      opts.tmms !== undefined ? { tmms: opts.tmms } : {},
    );
    if (opts.listen === false) return undefined;
    let got: ReceivedDownlink | undefined;
    await this.receive(
      [
        { name: "rx1", at: sentAt + this.rx1DelayS * 1000, freq, datr: this.datr },
        { name: "rx2", at: sentAt + (this.rx1DelayS + 1) * 1000, ...RX2 },
      ],
      (f, window) => {
        const d = this.openDownlink(f.phy, window);
        if (d) got = d;
        return d !== undefined;
      },
    );
    return got;
  }

  private openDownlink(phy: Buffer, window: "rx1" | "rx2"): ReceivedDownlink | undefined {
    const mtype = phy[0]! >> 5;
    if ((mtype !== 3 && mtype !== 5) || !this.devAddr || !this.nwkSKey || !this.appSKey)
      return undefined;
    let p;
    try {
      p = parse(phy);
    } catch {
      return undefined;
    }
    if (!p.DevAddr?.equals(this.devAddr)) return undefined;
    const full = fullFCnt(this.fCntDown, p.getFCnt()!);
    if (full < this.fCntDown || !verifyDataMic(p, this.nwkSKey, full)) return undefined;
    this.fCntDown = (full + 1) >>> 0;
    const fPort = p.getFPort();
    const payload =
      p.FRMPayload && p.FRMPayload.length
        ? decryptPayload(p, this.appSKey, this.nwkSKey, full)
        : Buffer.alloc(0);
    const macBuf = fPort === 0 ? payload : (p.FOpts ?? Buffer.alloc(0));
    const confirmed = mtype === 5;
    if (confirmed) this.ackNext = true;
    const d: ReceivedDownlink = {
      window,
      fCnt: full,
      confirmed,
      ack: p.getFCtrlACK() === true,
      fPending: p.getFCtrlFPending() === true,
      fPort,
      payload: fPort === 0 ? Buffer.alloc(0) : payload,
      mac: parseDownlinkMac(macBuf).commands,
    };
    this.downlinks.push(d);
    return d;
  }
}
