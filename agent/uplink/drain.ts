/**
 * Draining the outbox to the broker: several batches in flight, removed from the outbox (the
 * priority's watermark advanced) only after PUBACK, and only over a contiguous acknowledged
 * prefix — so after a crash the agent resumes at the first unacknowledged seq and duplicates can
 * only come from batches that were in flight.
 *
 * Each priority keeps a fetch cursor (the last seq handed to MQTT) separate from the watermark:
 * a batch is read from SQLite once and never re-read while in flight (the "prefetch race" that
 * made ThingsBoard's gateway send duplicates). On disconnect the in-flight batches are forgotten
 * and the cursors go back to the watermarks.
 */
import type { MqttClient } from "mqtt";
import type { Logger } from "pino";
import { withNormalSync } from "../store/db.js";
import { PRIORITIES, type Priority, withSeq } from "../store/records.js";
import type { Store } from "../store/store.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";

interface Batch {
  prio: Priority;
  first: number;
  last: number;
  count: number;
  acked: boolean;
}

export interface DrainOptions {
  batchSize: number;
  inflight: number;
  topic(stream: string): string;
}

/** Fixed bytes of a PUBLISH packet besides topic and payload (header, length, packet id, props). */
const PUBLISH_OVERHEAD = 16;

export class Drainer {
  private client?: MqttClient;
  private maxPacket = Infinity;
  private maxInflight: number;
  private readonly inflight: Batch[][] = [[], [], []];
  private inflightCount = 0;
  private readonly cursor = [0, 0, 0];
  /** false when the last fetch of the priority came back short: nothing to read until a commit. */
  private readonly more = [true, true, true];
  private stalled?: EdgeError;
  private pumping = false;
  counters = { messages: 0, records: 0 };
  lastPublishTs?: number;
  lastAckSeq = 0;

  constructor(
    private readonly store: Store,
    private readonly opts: DrainOptions,
    private readonly logger: Logger,
  ) {
    this.maxInflight = opts.inflight;
    store.onStored((recs) => {
      for (const r of recs) this.more[r.prio] = true;
      this.pump();
    });
  }

  /** Start draining on a fresh connection. */
  attach(
    client: MqttClient,
    maxPacketSize: number | undefined,
    receiveMaximum: number | undefined,
  ): void {
    this.detach();
    this.client = client;
    this.maxPacket = maxPacketSize ?? Infinity;
    // Leave room for state/inventory/command responses within the broker's receive maximum.
    this.maxInflight = Math.max(1, Math.min(this.opts.inflight, (receiveMaximum ?? 65_535) - 4));
    this.stalled = undefined;
    this.pump();
  }

  /** Connection lost: forget in-flight batches, resume from the watermarks next time. */
  detach(): void {
    this.client = undefined;
    for (const p of PRIORITIES) {
      this.inflight[p] = [];
      this.more[p] = true;
      this.cursor[p] = 0;
    }
    this.inflightCount = 0;
  }

  get inflightBatches(): number {
    return this.inflightCount;
  }
  get error(): EdgeError | undefined {
    return this.stalled;
  }

  /** Fill the in-flight window, highest priority first. Synchronous reads, async acks. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (
        this.client &&
        this.inflightCount < this.maxInflight &&
        !this.stalled &&
        this.store.available
      ) {
        if (!this.sendOne()) break;
      }
    } catch (err) {
      this.logger.error({ err }, "reading the outbox failed; draining resumes at the next commit");
    } finally {
      this.pumping = false;
    }
  }

  private sendOne(): boolean {
    const box = this.store.outbox;
    for (const prio of PRIORITIES) {
      if (!this.more[prio]) continue;
      const after = Math.max(this.cursor[prio]!, box.sentUpTo(prio));
      const rows = box.fetch(prio, after, this.opts.batchSize);
      if (rows.length < this.opts.batchSize) this.more[prio] = false;
      if (rows.length === 0) continue;
      const stream = rows[0]!.stream;
      let n = 1;
      while (n < rows.length && rows[n]!.stream === stream) n++;
      if (n < rows.length) this.more[prio] = true;
      const topic = this.opts.topic(stream);
      let parts: string[] = new Array<string>(n);
      for (let i = 0; i < n; i++) parts[i] = withSeq(rows[i]!.seq, rows[i]!.body);
      let payload = `{"records":[${parts.join(",")}]}`;
      // Respect the broker's Maximum Packet Size (MQTT 5 §3.2.2.3.6): halve until it fits.
      // (UTF-8 is at most 3 bytes per UTF-16 unit: skip the exact count when it cannot matter.)
      while (
        (payload.length + topic.length) * 3 + PUBLISH_OVERHEAD > this.maxPacket &&
        Buffer.byteLength(payload) + Buffer.byteLength(topic) + PUBLISH_OVERHEAD > this.maxPacket
      ) {
        if (parts.length === 1) {
          this.stalled = new EdgeError(
            ErrorCode.UplinkPacketTooLarge,
            `record seq ${rows[0]!.seq} does not fit in the broker's maximum packet size (${this.maxPacket} bytes); raise the broker's max_packet_size — the record stays in the store`,
            { seq: rows[0]!.seq, maxPacketSize: this.maxPacket },
          );
          this.logger.error({ err: this.stalled }, this.stalled.message);
          return false;
        }
        parts = parts.slice(0, Math.ceil(parts.length / 2));
        payload = `{"records":[${parts.join(",")}]}`;
        this.more[prio] = true;
      }
      const batch: Batch = {
        prio,
        first: rows[0]!.seq,
        last: rows[parts.length - 1]!.seq,
        count: parts.length,
        acked: false,
      };
      this.cursor[prio] = batch.last;
      this.inflight[prio]!.push(batch);
      this.inflightCount++;
      const client = this.client!;
      client.publish(topic, payload, { qos: 1 }, (err) => {
        if (client !== this.client) return; // a previous connection's callback
        if (err) this.refused(batch, err);
        else this.acked(batch);
      });
      return true;
    }
    return false;
  }

  private acked(batch: Batch): void {
    batch.acked = true;
    this.inflightCount--;
    this.lastPublishTs = Date.now();
    this.counters.messages++;
    this.counters.records += batch.count;
    const q = this.inflight[batch.prio]!;
    let upTo = -1;
    while (q.length > 0 && q[0]!.acked) upTo = q.shift()!.last;
    if (upTo >= 0) {
      // Recorded at once, not batched: only the batches still in flight may be sent twice after
      // a crash. A tiny transaction without fsync (see store/db.ts, withNormalSync).
      try {
        const box = this.store.outbox;
        withNormalSync(this.store.db, () => box.markSent(batch.prio, upTo));
        this.lastAckSeq = Math.max(this.lastAckSeq, upTo);
      } catch (err) {
        // The batch reached the broker; failing to record it only means it is sent again.
        this.logger.error({ err }, "could not record an acknowledged batch; it will be sent again");
      }
    }
    this.pump();
  }

  private refused(batch: Batch, err: Error): void {
    // PUBACK with a failure reason code (MQTT 5 §3.4.2.1), e.g. "Not authorized" by an ACL: the
    // records stay in the store; reconnecting (with backoff) retries from the watermark.
    this.logger.error(
      { err, first_seq: batch.first, last_seq: batch.last },
      `broker refused telemetry batch seq ${batch.first}..${batch.last}: ${err.message}`,
    );
    this.onRefused?.(err);
  }

  onRefused?: (err: Error) => void;
}
