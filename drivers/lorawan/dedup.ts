/**
 * Deduplication of the copies of one frame heard by several concentrators (see README.md,
 * "Deduplication"): copies arriving within `dedup_window` are merged and the best one is handed on
 * once; copies from other concentrators arriving later (up to LATE_COPY_MS) are dropped, while the
 * same bytes again from a concentrator that already reported them are passed on (a replay or a
 * retransmission, for uplink.ts to judge). Knows nothing of LoRaWAN beyond the raw bytes.
 */
import type { UplinkContext } from "./downlink.js";
import type { GatewayInfo } from "./gateways.js";
import type { RxPk } from "./semtech.js";

interface Copy {
  gw: GatewayInfo;
  rx: RxPk;
  receivedAt: number;
}

/** What is handed on per frame: its bytes, the best copy, and how many concentrators heard it. */
export type FrameHandler = (phy: Buffer, up: UplinkContext, gateways: number) => void;

/** How long a processed frame is remembered to drop copies arriving after the window. */
const LATE_COPY_MS = 10_000;

/** Best copy: highest SNR, then highest RSSI (ChirpStack sorts the same way). */
function better(a: Copy, b: Copy): boolean {
  return a.rx.lsnr !== b.rx.lsnr ? a.rx.lsnr > b.rx.lsnr : a.rx.rssi > b.rx.rssi;
}

export class Deduplicator {
  private readonly pending = new Map<
    string,
    { copies: Copy[]; timer: NodeJS.Timeout | undefined }
  >();
  private readonly recent = new Map<string, { at: number; gws: Set<string> }>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly counters: { duplicates: number },
    private readonly onFrame: FrameHandler,
  ) {}

  /** Start forgetting processed frames older than LATE_COPY_MS. */
  start(): void {
    this.sweep = setInterval(() => {
      const old = Date.now() - LATE_COPY_MS;
      for (const [k, v] of this.recent) if (v.at < old) this.recent.delete(k);
    }, LATE_COPY_MS).unref();
  }

  stop(): void {
    if (this.sweep) clearInterval(this.sweep);
    for (const e of this.pending.values()) if (e.timer) clearTimeout(e.timer);
    this.pending.clear();
  }

  rxpk(gw: GatewayInfo, rx: RxPk, receivedAt: number): void {
    const key = rx.data.toString("base64");
    const copy = { gw, rx, receivedAt };
    const pending = this.pending.get(key);
    if (pending) {
      pending.copies.push(copy);
      this.counters.duplicates++;
      return;
    }
    // A late copy comes from another concentrator; the same bytes again from a concentrator that
    // already reported them were sent again (a replay or retransmission): process them.
    const seen = this.recent.get(key);
    if (seen && !seen.gws.has(gw.eui)) {
      seen.gws.add(gw.eui);
      this.counters.duplicates++;
      return;
    }
    if (this.windowMs <= 0) {
      this.recent.set(key, { at: receivedAt, gws: new Set([gw.eui]) });
      this.handOn([copy]);
      return;
    }
    const entry = { copies: [copy], timer: undefined as NodeJS.Timeout | undefined };
    entry.timer = setTimeout(() => {
      this.pending.delete(key);
      this.recent.set(key, { at: Date.now(), gws: new Set(entry.copies.map((c) => c.gw.eui)) });
      this.handOn(entry.copies);
    }, this.windowMs);
    this.pending.set(key, entry);
  }

  private handOn(copies: Copy[]): void {
    let best = copies[0]!;
    // Downlinks need a concentrator that sent PULL_DATA: prefer the best of those.
    for (const c of copies)
      if ((c.gw.pull && !best.gw.pull) || (!!c.gw.pull === !!best.gw.pull && better(c, best)))
        best = c;
    const up: UplinkContext = {
      gatewayEui: best.gw.eui,
      rx: best.rx,
      receivedAt: copies[0]!.receivedAt,
    };
    this.onFrame(best.rx.data, up, copies.length);
  }
}
