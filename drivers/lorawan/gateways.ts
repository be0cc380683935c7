/**
 * The UDP side of the packet-forwarder bridge: one socket, a bounded table of concentrators.
 * PUSH_DATA is acknowledged before it is processed (PROTOCOL.TXT §3: the forwarder only waits for
 * the ACK); PULL_DATA tells where a concentrator listens for downlinks (its NAT mapping, kept
 * alive by its keepalive); TX_ACK reports the fate of each PULL_RESP. Malformed datagrams are
 * counted per reason and dropped; nothing a datagram contains can stop the server.
 *
 * The Semtech UDP protocol authenticates nothing: a datagram only claims a gateway EUI. So
 * (see admission.ts): only allow-listed EUIs are served (or, without a list, up to `max`), and a
 * concentrator is bound to the IP address it speaks from, so a forged PULL_DATA from elsewhere
 * cannot redirect its downlinks. The last downlink path of each concentrator is kept in the
 * durable state, so downlinks work right after an agent restart.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { randomInt } from "node:crypto";
import type { Logger } from "pino";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { GatewayAdmission, type AdmissionPolicy, type SavedPath } from "./admission.js";
import {
  MalformedDatagram,
  build,
  parseDatagram,
  peekGatewayEui,
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
  /** The IP address this concentrator is bound to (admission.ts), and when it last spoke. */
  boundIp?: string;
  lastSeenAt: number;
  rx: number;
  tx: number;
  txErrors: number;
}

export interface GatewayHandlers {
  rxpk(gw: GatewayInfo, rxpk: RxPk, receivedAt: number): void;
  stat(gw: GatewayInfo, stat: GatewayStat, receivedAt: number): void;
  txAck(gw: GatewayInfo, token: number, error: string): void;
  /** A datagram refused by the admission rules (rate-limited by the caller). */
  refused(cause: string, message: string, data: Record<string, unknown>): void;
}

/** Where the last downlink paths are kept across restarts (LorawanState). */
export interface PathStore {
  load(): Record<string, SavedPath>;
  save(paths: Record<string, SavedPath>): void;
}

export class GatewayServer {
  private socket: Socket | undefined;
  readonly gateways = new Map<string, GatewayInfo>();
  readonly admission: GatewayAdmission;
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
    gateway_unknown: 0,
    gateway_table_full: 0,
    gateway_wrong_source: 0,
    gateway_moved: 0,
    gateway_paths_restored: 0,
  };

  constructor(
    private readonly listen: { host: string; port: number },
    private readonly handlers: GatewayHandlers,
    private readonly log: Logger,
    policy: AdmissionPolicy,
    private readonly paths?: PathStore,
  ) {
    this.admission = new GatewayAdmission(policy, this.gateways, this.counters);
  }

  async start(): Promise<void> {
    this.restorePaths();
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

  /** The concentrator `eui` speaking from `rinfo`, or undefined when refused (counted, reported). */
  private gateway(eui: string, version: number, rinfo: RemoteInfo, now: number) {
    const v = this.admission.admit(eui, rinfo.address, now);
    if (!v.ok) {
      this.handlers.refused(v.cause, v.message, { gateway: eui, source: rinfo.address });
      return undefined;
    }
    if (v.isNew) this.log.info({ gateway: eui, address: rinfo.address }, "new concentrator");
    if (v.moved) {
      this.log.warn({ gateway: eui, address: rinfo.address, from: v.moved }, "concentrator moved");
      this.handlers.refused("moved", v.message, {
        gateway: eui,
        source: rinfo.address,
        previous: v.moved,
      });
    }
    v.gw.version = version;
    return v.gw;
  }

  /** Downlink paths saved before a restart: usable until the concentrator's next PULL_DATA. */
  private restorePaths(): void {
    if (!this.paths) return;
    const now = Date.now();
    for (const [eui, p] of Object.entries(this.paths.load())) {
      const v = this.admission.admit(eui, p.address, now);
      if (!v.ok) continue;
      v.gw.version = p.version;
      v.gw.pull = { address: p.address, port: p.port, at: p.at };
      this.counters.gateway_paths_restored!++;
    }
  }

  private savePaths(): void {
    if (!this.paths) return;
    const all: Record<string, SavedPath> = {};
    for (const g of this.gateways.values())
      if (g.pull) all[g.eui] = { ...g.pull, version: g.version };
    try {
      this.paths.save(all);
    } catch (e) {
      // Only costs downlinks after a restart until the next PULL_DATA: log, keep serving.
      this.log.warn({ err: e }, "downlink paths not saved");
    }
  }

  private send(buf: Buffer, port: number, address: string): void {
    this.socket?.send(buf, port, address, (e) => {
      if (e) this.log.warn({ err: e, address, port }, "UDP send failed");
    });
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    this.counters.datagrams!++;
    const now = Date.now();
    // Refused concentrators are dropped on their header: no JSON parsed for a flood.
    const claimed = peekGatewayEui(msg);
    if (claimed !== undefined) {
      const no = this.admission.refusal(claimed, rinfo.address, now);
      if (no) {
        this.handlers.refused(no.cause, no.message, { gateway: claimed, source: rinfo.address });
        return;
      }
    }
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
        this.counters.push_data!++;
        // Refused concentrators get no ACK: their forwarder logs it, which is what an installer
        // who forgot to register one needs to see.
        const gw = this.gateway(d.gatewayEui, d.version, rinfo, now);
        if (!gw) return;
        this.send(build.pushAck(d.version, d.token), rinfo.port, rinfo.address);
        this.counters.rxpk_invalid! += d.badRxpk;
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
        this.counters.pull_data!++;
        const gw = this.gateway(d.gatewayEui, d.version, rinfo, now);
        if (!gw) return;
        this.send(build.pullAck(d.version, d.token), rinfo.port, rinfo.address);
        const changed = gw.pull?.address !== rinfo.address || gw.pull.port !== rinfo.port;
        gw.pull = { address: rinfo.address, port: rinfo.port, at: now };
        // Durable only when it changes (a keepalive every 10 s must not cost an fsync each).
        if (changed) this.savePaths();
        return;
      }
      case "tx_ack": {
        this.counters.tx_ack!++;
        const gw = this.gateway(d.gatewayEui, d.version, rinfo, now);
        if (!gw) return;
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
