/**
 * Durable LoRaWAN state through the driver's `DriverState` (SQLite, owned by the store): sessions
 * with their frame counters, used DevNonces, JoinNonces and the downlink queues. Everything is
 * written through before the frame that changed it is acted upon, so a restart never reopens a
 * replay window nor loses a queued command.
 *
 * Keys: `session:<device>`, `devnonce:<device>`, `joinnonce:<device>`, `queue:<device>`,
 * `gateways` (each concentrator's last PULL_DATA address) and `fcnt`: the frame counters of
 * every session in one value. A durable write costs an fsync
 * (~5 ms here), so the counters changed by all the frames handled in one event-loop turn are
 * committed together (`commit()`), and the network acts on those frames (readings, downlinks)
 * only after that commit: one fsync per turn instead of one per frame, same guarantee.
 */
import type { DriverState } from "../driver.js";
import type { SavedPath } from "./admission.js";

export interface Session {
  /** Identifies this session (a new one per join) so stale counters are never applied to it. */
  sid: string;
  activation: "otaa" | "abp";
  devAddr: string; // hex, big-endian (as written on labels)
  nwkSKey: string;
  appSKey: string;
  /** Next expected 32-bit uplink counter. */
  fCntUp: number;
  /** Last accepted uplink counter (-1 before the first). */
  lastFCntUp: number;
  /** Next downlink counter. */
  fCntDown: number;
  joinedAt?: number;
  /** A confirmed downlink waiting for the device's ACK. */
  pendingAck?: QueuedDownlink;
}

export interface QueuedDownlink {
  id: string;
  fPort: number;
  bytes: string; // hex
  confirmed: boolean;
  commandId?: string;
  /** Transmissions so far (confirmed downlinks are resent when not acknowledged). */
  attempts: number;
  queuedAt: number;
}

/** [sid, fCntUp, lastFCntUp, fCntDown] per device. */
type Counters = Record<string, [string, number, number, number]>;

export class LorawanState {
  private readonly sessions = new Map<string, Session>();
  private readonly queues = new Map<string, QueuedDownlink[]>();
  private readonly counters: Counters;
  private dirty = false;

  constructor(private readonly state: DriverState) {
    this.counters = state.get<Counters>("fcnt") ?? {};
  }

  session(device: string): Session | undefined {
    let s = this.sessions.get(device);
    if (!s) {
      s = this.state.get<Session>(`session:${device}`);
      if (!s) return undefined;
      const c = this.counters[device];
      // Counters only grow within a session: the larger of the two writes is the latest.
      if (c && c[0] === s.sid) {
        s.fCntUp = Math.max(s.fCntUp, c[1]);
        s.lastFCntUp = Math.max(s.lastFCntUp, c[2]);
        s.fCntDown = Math.max(s.fCntDown, c[3]);
      }
      this.sessions.set(device, s);
    }
    return s;
  }

  /** Write a whole session now (joins, ABP set-up, confirmed-downlink tracking). */
  saveSession(device: string, s: Session): void {
    this.state.set(`session:${device}`, s);
    this.sessions.set(device, s);
    this.setCounters(device, s);
  }

  /** Record new counters of `device`; durable at the next `commit()`. */
  setCounters(device: string, s: Session): void {
    this.counters[device] = [s.sid, s.fCntUp, s.lastFCntUp, s.fCntDown];
    this.dirty = true;
  }

  /** Persist the counters changed since the last commit (one durable write). */
  commit(): void {
    if (!this.dirty) return;
    this.state.set("fcnt", this.counters);
    this.dirty = false;
  }

  dropSession(device: string): void {
    this.state.delete(`session:${device}`);
    this.sessions.delete(device);
    delete this.counters[device];
    this.dirty = true;
    this.commit();
  }

  /** True when `nonce` was already used by `device` (LoRaWAN 1.0.4 §6.2.4: refuse it). */
  devNonceUsed(device: string, nonce: number): boolean {
    return (this.state.get<number[]>(`devnonce:${device}`) ?? []).includes(nonce);
  }

  recordDevNonce(device: string, nonce: number): void {
    const used = this.state.get<number[]>(`devnonce:${device}`) ?? [];
    used.push(nonce);
    this.state.set(`devnonce:${device}`, used);
  }

  /** Next JoinNonce (24 bits, strictly increasing per device: §6.2.5). */
  nextJoinNonce(device: string): number {
    const n = ((this.state.get<number>(`joinnonce:${device}`) ?? 0) + 1) & 0xffffff;
    this.state.set(`joinnonce:${device}`, n);
    return n;
  }

  /** The device's queue (read once, then kept in memory: every uplink looks at it). */
  queue(device: string): QueuedDownlink[] {
    let q = this.queues.get(device);
    if (!q) {
      q = this.state.get<QueuedDownlink[]>(`queue:${device}`) ?? [];
      this.queues.set(device, q);
    }
    return [...q];
  }

  /** The concentrators' last downlink paths (key `gateways`), for downlinks right after a restart. */
  gatewayPaths(): Record<string, SavedPath> {
    return this.state.get<Record<string, SavedPath>>("gateways") ?? {};
  }

  saveGatewayPaths(paths: Record<string, SavedPath>): void {
    this.state.set("gateways", paths);
  }

  saveQueue(device: string, q: readonly QueuedDownlink[]): void {
    if (q.length === 0) this.state.delete(`queue:${device}`);
    else this.state.set(`queue:${device}`, q);
    this.queues.set(device, [...q]);
  }
}

const keyCache = new WeakMap<Session, { nwk: Buffer; app: Buffer }>();

/** Session keys as buffers, decoded once per session object (every uplink needs them). */
export function keysOf(s: Session): { nwk: Buffer; app: Buffer } {
  let k = keyCache.get(s);
  if (!k) {
    k = { nwk: Buffer.from(s.nwkSKey, "hex"), app: Buffer.from(s.appSKey, "hex") };
    keyCache.set(s, k);
  }
  return k;
}
