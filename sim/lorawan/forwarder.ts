/**
 * A simulated LoRa concentrator running the Semtech UDP packet forwarder (protocol v1 or v2):
 * PUSH_DATA for what it "hears", PULL_DATA keepalives, PULL_RESP downlinks transmitted at their
 * `tmst` on its own microsecond counter, and TX_ACK (v2) with TOO_LATE/TOO_EARLY as a real
 * forwarder's JIT queue would answer. The radio medium (SimRadio) carries frames to devices.
 */
import { createSocket, type Socket } from "node:dgram";
import { randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";
import {
  build,
  parseDatagram,
  type GatewayStat,
  type TxPk,
} from "../../drivers/lorawan/semtech.js";

export interface AirFrame {
  phy: Buffer;
  freq: number;
  datr: string;
  /** Local time (performance.now() ms) at which the frame is on the air. */
  at: number;
}

export interface UplinkRadio {
  freq: number;
  datr: string;
  rssi: number;
  lsnr: number;
}

export interface ForwarderOptions {
  server: { host: string; port: number };
  gatewayEui: string;
  version?: 1 | 2;
  keepaliveMs?: number;
  /** Local address to send from (default 127.0.0.1; any 127.x for a second "host" in tests). */
  bind?: string;
  /** Send the first PULL_DATA on start (default true). */
  pullOnStart?: boolean;
  /** Called for every downlink the concentrator puts on the air. */
  onAir?: (f: AirFrame) => void;
}

export class SimForwarder {
  private socket: Socket | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private readonly acks = new Map<number, () => void>();
  /** Each concentrator has its own free-running µs counter: start it at a random value. */
  private readonly offsetUs = randomInt(0, 0xffffffff);
  readonly version: 1 | 2;
  readonly sent: TxPk[] = [];
  readonly txAcks: string[] = [];
  pullAcked = false;

  constructor(private readonly opts: ForwarderOptions) {
    this.version = opts.version ?? 2;
  }

  get eui(): string {
    return this.opts.gatewayEui;
  }

  tmstNow(): number {
    return (Math.floor(performance.now() * 1000) + this.offsetUs) >>> 0;
  }

  async start(): Promise<void> {
    const s = createSocket("udp4");
    await new Promise<void>((resolve) => s.bind(0, this.opts.bind ?? "127.0.0.1", () => resolve()));
    s.on("message", (m) => this.onMessage(m));
    this.socket = s;
    if (this.opts.pullOnStart !== false) await this.pull();
    this.keepalive = setInterval(
      () => void this.pull().catch(() => undefined),
      this.opts.keepaliveMs ?? 5000,
    );
    this.keepalive.unref();
  }

  async stop(): Promise<void> {
    if (this.keepalive) clearInterval(this.keepalive);
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private sendAndWait(buf: Buffer, token: number, timeoutMs = 2000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.acks.delete(token);
        reject(new Error(`no ACK from the server for token ${token}`));
      }, timeoutMs);
      this.acks.set(token, () => {
        clearTimeout(t);
        resolve();
      });
      this.socket?.send(buf, this.opts.server.port, this.opts.server.host);
    });
  }

  async pull(): Promise<void> {
    const token = randomInt(0, 0x10000);
    await this.sendAndWait(build.pullData(this.version, token, this.eui), token);
    this.pullAcked = true;
  }

  /** Forward a frame heard on the air; resolves on PUSH_ACK. Returns the rxpk's tmst. */
  async push(phy: Buffer, radio: UplinkRadio, extra: { tmms?: number } = {}): Promise<number> {
    const tmst = this.tmstNow();
    const rxpk = {
      tmst,
      time: new Date().toISOString(),
      ...extra,
      chan: 0,
      rfch: 0,
      freq: radio.freq,
      stat: 1,
      modu: "LORA",
      datr: radio.datr,
      codr: "4/5",
      rssi: radio.rssi,
      lsnr: radio.lsnr,
      size: phy.length,
      data: phy.toString("base64"),
    };
    const token = randomInt(0, 0x10000);
    await this.sendAndWait(build.pushData(this.version, token, this.eui, { rxpk: [rxpk] }), token);
    return tmst;
  }

  /** Send a raw datagram (tests of malformed input). */
  raw(buf: Buffer): void {
    this.socket?.send(buf, this.opts.server.port, this.opts.server.host);
  }

  async stat(stat: GatewayStat): Promise<void> {
    const token = randomInt(0, 0x10000);
    await this.sendAndWait(build.pushData(this.version, token, this.eui, { stat }), token);
  }

  private onMessage(m: Buffer): void {
    let d;
    try {
      d = parseDatagram(m);
    } catch {
      return;
    }
    if (d.type === "push_ack" || d.type === "pull_ack") {
      this.acks.get(d.token)?.();
      this.acks.delete(d.token);
      return;
    }
    if (d.type !== "pull_resp") return;
    const tx = d.txpk;
    this.sent.push(tx);
    const phy = Buffer.from(tx.data, "base64");
    // The JIT queue of lora_pkt_fwd refuses packets due in less than ~30 ms or more than ~3 s.
    const delayUs = tx.imme ? 0 : ((tx.tmst ?? 0) - this.tmstNow()) | 0;
    let error = "NONE";
    if (delayUs < 30_000 && !tx.imme) error = "TOO_LATE";
    else if (delayUs > 3_000_000 + 5_000_000) error = "TOO_EARLY";
    if (this.version === 2) {
      this.txAcks.push(error);
      this.socket?.send(
        build.txAck(d.token, this.eui, error),
        this.opts.server.port,
        this.opts.server.host,
      );
    }
    if (error !== "NONE") return;
    const at = performance.now() + delayUs / 1000;
    setTimeout(
      () => this.opts.onAir?.({ phy, freq: tx.freq, datr: tx.datr, at }),
      Math.max(0, delayUs / 1000),
    ).unref();
  }
}
