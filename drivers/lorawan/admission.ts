/**
 * Which packet-forwarder datagrams are served (README.md, "Concentrators"). A Semtech UDP
 * datagram only *claims* a gateway EUI (PROTOCOL.TXT has no authentication), so:
 *
 * 1. EUI allow-list (`gateways.allow`, as ChirpStack and TTN serve registered gateways only): an
 *    EUI not on it is dropped and counted per source address (a bounded table), never a reading.
 *    Without a list (allowed on a loopback listener only) any EUI is served up to `max`.
 * 2. Address binding: a concentrator is bound to the IP address it first speaks from (or to the
 *    `address` pinned in the allow-list). A datagram with its EUI from another IP is dropped, so a
 *    forged PULL_DATA cannot redirect its downlinks nor a forged `stat` fake its readings. The
 *    port may change (lora_pkt_fwd sends PUSH_DATA and PULL_DATA from two sockets, and NAT
 *    rebinds ports). The binding moves to a new IP only when the bound one has been silent for
 *    `rebind_after` (a concentrator that got a new DHCP lease); a pinned address never moves.
 */
import type { GatewayInfo } from "./gateways.js";

export interface AdmissionPolicy {
  /** EUI → pinned source address (undefined: bound on first contact); undefined: any EUI. */
  allow: Map<string, string | undefined> | undefined;
  max: number;
  rebindAfterMs: number;
}

/** A concentrator's last downlink path, persisted across restarts. */
export interface SavedPath {
  address: string;
  port: number;
  at: number;
  version: number;
}

export type Refusal = {
  ok: false;
  cause: "unknown" | "table_full" | "wrong_source";
  message: string;
};
export type Admission =
  { ok: true; gw: GatewayInfo; isNew: boolean; moved?: string; message: string } | Refusal;

export interface SourceStats {
  address: string;
  datagrams: number;
  lastEui: string;
  lastAt: number;
}

/** Distinct source addresses tracked for refused datagrams; the rest are summed in `other`. */
const MAX_SOURCES = 32;

/** "::ffff:127.0.0.1" (IPv4 on a dual-stack socket) and "127.0.0.1" are one address. */
const norm = (ip: string): string => (ip.startsWith("::ffff:") ? ip.slice(7) : ip);

export class GatewayAdmission {
  private readonly sources = new Map<string, SourceStats>();
  /** Refused datagrams from sources beyond MAX_SOURCES. */
  otherSources = 0;

  constructor(
    private readonly policy: AdmissionPolicy,
    private readonly table: Map<string, GatewayInfo>,
    private readonly counters: Record<string, number>,
  ) {}

  /**
   * Why a datagram claiming `eui` from `address` is refused (counted), or undefined when it is
   * served. Changes no binding: `admit` does that once the datagram parsed.
   */
  refusal(
    eui: string,
    address: string,
    now: number,
  ): Extract<Admission, { ok: false }> | undefined {
    const ip = norm(address);
    const allow = this.policy.allow;
    if (allow && !allow.has(eui)) {
      this.counters.gateway_unknown!++;
      this.countSource(ip, eui, now);
      return {
        ok: false,
        cause: "unknown",
        message: `datagrams from concentrator ${eui} (${ip}) dropped: its EUI is not in gateways.allow`,
      };
    }
    const gw = this.table.get(eui);
    if (!gw) {
      if (this.table.size >= this.policy.max) {
        this.counters.gateway_table_full!++;
        this.countSource(ip, eui, now);
        return {
          ok: false,
          cause: "table_full",
          message: `concentrator ${eui} (${ip}) refused: ${this.policy.max} concentrators already served (gateways.max)`,
        };
      }
      const pinned = allow?.get(eui);
      if (pinned !== undefined && norm(pinned) !== ip)
        return this.wrongSource(eui, ip, pinned, now);
      return undefined;
    }
    if (gw.boundIp === undefined || gw.boundIp === ip) return undefined;
    if (allow?.get(eui) !== undefined || now - gw.lastSeenAt < this.policy.rebindAfterMs)
      return this.wrongSource(eui, ip, gw.boundIp, now);
    return undefined;
  }

  admit(eui: string, address: string, now: number): Admission {
    const no = this.refusal(eui, address, now);
    if (no) return no;
    const ip = norm(address);
    const allow = this.policy.allow;
    let gw = this.table.get(eui);
    if (!gw) {
      gw = {
        eui,
        version: 2,
        boundIp: allow?.get(eui) ?? ip,
        lastSeenAt: now,
        rx: 0,
        tx: 0,
        txErrors: 0,
      };
      this.table.set(eui, gw);
      return { ok: true, gw, isNew: true, message: "" };
    }
    if (gw.boundIp === undefined || gw.boundIp === ip) {
      gw.boundIp = ip;
      gw.lastSeenAt = now;
      return { ok: true, gw, isNew: false, message: "" };
    }
    return this.move(gw, ip, now);
  }

  /** Silent for rebind_after at its old address (refusal() checked): the concentrator moved. */
  private move(gw: GatewayInfo, ip: string, now: number): Admission {
    const eui = gw.eui;
    const from = gw.boundIp;
    const silentS = Math.round((now - gw.lastSeenAt) / 1000);
    gw.boundIp = ip;
    gw.lastSeenAt = now;
    delete gw.pull;
    this.counters.gateway_moved!++;
    return {
      ok: true,
      gw,
      isNew: false,
      moved: from,
      message: `concentrator ${eui} now speaks from ${ip} (silent at ${from} for ${silentS} s)`,
    };
  }

  private wrongSource(eui: string, ip: string, bound: string, now: number): Refusal {
    this.counters.gateway_wrong_source!++;
    this.countSource(ip, eui, now);
    return {
      ok: false,
      cause: "wrong_source",
      message: `datagram claiming concentrator ${eui} from ${ip} dropped: it is bound to ${bound} (forged, or a second forwarder with the same EUI)`,
    };
  }

  private countSource(ip: string, eui: string, now: number): void {
    let s = this.sources.get(ip);
    if (!s) {
      if (this.sources.size >= MAX_SOURCES) {
        this.otherSources++;
        return;
      }
      s = { address: ip, datagrams: 0, lastEui: eui, lastAt: now };
      this.sources.set(ip, s);
    }
    s.datagrams++;
    s.lastEui = eui;
    s.lastAt = now;
  }

  /** Sources of refused datagrams, most active first (at most `n`). */
  refusedSources(n: number): SourceStats[] {
    return [...this.sources.values()].sort((a, b) => b.datagrams - a.datagrams).slice(0, n);
  }
}
