/**
 * The UDP side of the packet-forwarder bridge: one socket, any number of concentrators.
 * PUSH_DATA is acknowledged before it is processed (PROTOCOL.TXT §3: the forwarder only waits for
 * the ACK); PULL_DATA tells where a concentrator listens for downlinks (its NAT mapping, kept
 * alive by its keepalive); TX_ACK reports the fate of each PULL_RESP. Malformed datagrams are
 * counted per reason and dropped; nothing a datagram contains can stop the server.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { randomInt } from "node:crypto";
import type { Logger } from "pino";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import {
  MalformedDatagram,
  build,
  parseDatagram,
  type GatewayStat,
  type RxPk,
  type TxPk,
} from "./semtech.js";

export interface GatewayInfo {
  eui: string;
  version: number;
  /** Where PULL_RESP goes (from the last PULL_DATA). */
  pull?: { address: string; port: number; at: number };
  lastPushAt?: number;
  lastStat?: GatewayStat;
  rx: number;
  tx: number;
  txErrors: number;
}

export interface GatewayHandlers {
  rxpk(gw: GatewayInfo, rxpk: RxPk, receivedAt: number): void;
  stat(gw: GatewayInfo, stat: GatewayStat, receivedAt: number): void;
  txAck(gw: GatewayInfo, token: number, error: string): void;
}

export class GatewayServer {
  private socket: Socket | undefined;
  readonly gateways = new Map<string, GatewayInfo>();
  readonly counters: Record<string, number> = {
    datagrams: 0,
    push_data: 0,
    pull_data: 0,
    tx_ack: 0,
    rxpk: 0,
    rxpk_crc_bad: 0,
    rxpk_invalid: 0,
    pull_resp: 0,
    malformed_short: 0,
    malformed_version: 0,
    malformed_identifier: 0,
    malformed_json: 0,
    malformed_base64: 0,
    malformed_field: 0,
    unexpected: 0,
  };

  constructor(
    private readonly listen: { host: string; port: number },
    private readonly handlers: GatewayHandlers,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const socket = createSocket({ type: this.listen.host.includes(":") ? "udp6" : "udp4" });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", (e: NodeJS.ErrnoException) => {
        reject(
          new EdgeError(
            ErrorCode.DriverStart,
            `cannot listen on UDP ${this.listen.host}:${this.listen.port} for packet forwarders: ${e.code === "EADDRINUSE" ? "the port is already in use (another network server or agent?)" : e.message}`,
            { host: this.listen.host, port: this.listen.port },
          ),
        );
      });
      socket.bind(this.listen.port, this.listen.host, () => resolve());
    });
    socket.removeAllListeners("error");
    socket.on("error", (e) => this.log.error({ err: e }, "UDP socket error"));
    socket.on("message", (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket = socket;
  }

  /** The bound port (useful when configured as 0 in tests). */
  port(): number {
    return this.socket?.address().port ?? this.listen.port;
  }

  async stop(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private gateway(eui: string, version: number): GatewayInfo {
    let g = this.gateways.get(eui);
    if (!g) {
      g = { eui, version, rx: 0, tx: 0, txErrors: 0 };
      this.gateways.set(eui, g);
      this.log.info({ gateway: eui }, "new concentrator");
    }
    g.version = version;
    return g;
  }

  private send(buf: Buffer, port: number, address: string): void {
    this.socket?.send(buf, port, address, (e) => {
      if (e) this.log.warn({ err: e, address, port }, "UDP send failed");
    });
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    this.counters.datagrams!++;
    const now = Date.now();
    let d;
    try {
      d = parseDatagram(msg);
    } catch (e) {
      if (!(e instanceof MalformedDatagram)) throw e;
      this.counters[`malformed_${e.reason}`]!++;
      if (this.log.isLevelEnabled("debug"))
        this.log.debug(
          {
            from: `${rinfo.address}:${rinfo.port}`,
            reason: e.reason,
            hex: msg.subarray(0, 64).toString("hex"),
          },
          `malformed datagram: ${e.message}`,
        );
      return;
    }
    switch (d.type) {
      case "push_data": {
        this.send(build.pushAck(d.version, d.token), rinfo.port, rinfo.address);
        this.counters.push_data!++;
        this.counters.rxpk_invalid! += d.badRxpk;
        const gw = this.gateway(d.gatewayEui, d.version);
        gw.lastPushAt = now;
        for (const rx of d.rxpk) {
          if (rx.stat !== 1) {
            // CRC failed (or absent): the frame is noise, not a replay or a MIC failure.
            this.counters.rxpk_crc_bad!++;
            continue;
          }
          this.counters.rxpk!++;
          gw.rx++;
          this.handlers.rxpk(gw, rx, now);
        }
        if (d.stat) {
          gw.lastStat = d.stat;
          this.handlers.stat(gw, d.stat, now);
        }
        return;
      }
      case "pull_data": {
        this.send(build.pullAck(d.version, d.token), rinfo.port, rinfo.address);
        this.counters.pull_data!++;
        const gw = this.gateway(d.gatewayEui, d.version);
        gw.pull = { address: rinfo.address, port: rinfo.port, at: now };
        return;
      }
      case "tx_ack": {
        this.counters.tx_ack!++;
        const gw = this.gateway(d.gatewayEui, d.version);
        if (d.error !== "NONE") gw.txErrors++;
        this.handlers.txAck(gw, d.token, d.error);
        return;
      }
      case "push_ack":
      case "pull_ack":
      case "pull_resp":
        // Server-to-gateway messages sent to the server: a loop or a misconfigured peer.
        this.counters.unexpected!++;
        return;
    }
  }

  /** Send a downlink through `eui`; returns the PULL_RESP token (TX_ACK echoes it in v2). */
  sendTxpk(eui: string, txpk: TxPk): number {
    const gw = this.gateways.get(eui);
    if (!gw?.pull)
      throw new Error(`concentrator ${eui} has not sent PULL_DATA yet: no downlink path`);
    const token = randomInt(1, 0x10000);
    this.send(build.pullResp(gw.version, token, txpk), gw.pull.port, gw.pull.address);
    this.counters.pull_resp!++;
    gw.tx++;
    return token;
  }
}
