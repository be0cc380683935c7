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
 *
 * A broker that keeps the link up (answers PINGREQ) but never acknowledges would stall the drain
 * forever with `connected: true`: a batch without PUBACK for `ackTimeoutMs` drops the connection
 * (issue 15 item 5), and the reconnect resumes from the watermark. Publishes failed by the link
 * going down ("Connection closed") are not refusals and are not logged one by one: the
 * connection logs one warning per link loss.
 */
import type { MqttClient } from "mqtt";
import type { Logger } from "pino";
import { batchPayload, PRIORITIES, type Priority, withSeq } from "../store/records.js";
import type { Store } from "../store/store.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type { PublishGate } from "./gate.js";

interface Batch {
  prio: Priority;
  first: number;
  last: number;
  count: number;
  acked: boolean;
  sentAt: number;
}

export interface DrainOptions {
  batchSize: number;
  inflight: number;
  topic(stream: string): string;
  /** A batch without PUBACK for this long drops the connection (ms). */
  ackTimeoutMs: number;
}

export class Drainer {
  private client?: MqttClient;
  private ackTimer?: NodeJS.Timeout;
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
    private readonly gate: PublishGate,
    private readonly logger: Logger,
  ) {
    this.maxInflight = opts.inflight;
    store.onStored((recs) => {
      for (const r of recs) this.more[r.prio] = true;
      this.pump();
    });
  }

  /** Start draining on a fresh connection. */
  attach(client: MqttClient, receiveMaximum: number | undefined): void {
    this.detach();
    this.client = client;
    const period = Math.max(250, Math.floor(this.opts.ackTimeoutMs / 4));
    this.ackTimer = setInterval(() => this.checkAcks(), period);
    this.ackTimer.unref();
    // Leave room for state/inventory/command responses within the broker's receive maximum.
    this.maxInflight = Math.max(1, Math.min(this.opts.inflight, (receiveMaximum ?? 65_535) - 4));
    this.stalled = undefined;
    this.pump();
  }

  /** Connection lost: forget in-flight batches, resume from the watermarks next time. */
  detach(): void {
    this.client = undefined;
    clearInterval(this.ackTimer);
    this.ackTimer = undefined;
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

  /** The oldest unacknowledged batch waited longer than ackTimeoutMs: the link is useless. */
  private checkAcks(): void {
    const now = Date.now();
    let oldest = Infinity;
    for (const q of this.inflight)
      for (const b of q) if (!b.acked) oldest = Math.min(oldest, b.sentAt);
    if (this.client && now - oldest > this.opts.ackTimeoutMs) {
      clearInterval(this.ackTimer);
      this.ackTimer = undefined;
      this.onAckTimeout?.(
        `no PUBACK from the broker for ${Math.round((now - oldest) / 1000)} s (${this.inflightCount} batches in flight)`,
      );
    }
  }

  onAckTimeout?: (reason: string) => void;

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
      const epoch = this.store.epoch;
      let payload = batchPayload(epoch, parts);
      // Respect the broker's Maximum Packet Size (publish gate, gate.ts): halve until it fits.
      while (!this.gate.fits(topic, payload)) {
        if (parts.length === 1) {
          this.stalled = new EdgeError(
            ErrorCode.UplinkPacketTooLarge,
            `record seq ${rows[0]!.seq} does not fit in the broker's maximum packet size (${this.gate.maxPacket} bytes); raise the broker's max_packet_size — the record stays in the store`,
            { seq: rows[0]!.seq, maxPacketSize: this.gate.maxPacket },
          );
          this.logger.error({ err: this.stalled }, this.stalled.message);
          return false;
        }
        parts = parts.slice(0, Math.ceil(parts.length / 2));
        payload = batchPayload(epoch, parts);
        this.more[prio] = true;
      }
      const batch: Batch = {
        prio,
        first: rows[0]!.seq,
        last: rows[parts.length - 1]!.seq,
        count: parts.length,
        acked: false,
        sentAt: Date.now(),
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
        this.store.markSent(batch.prio, upTo);
        this.lastAckSeq = Math.max(this.lastAckSeq, upTo);
      } catch (err) {
        // The batch reached the broker; failing to record it only means it is sent again.
        this.logger.error({ err }, "could not record an acknowledged batch; it will be sent again");
      }
    }
    this.pump();
  }

  private refused(batch: Batch, err: Error): void {
    // Only a PUBACK with a failure reason code (MQTT 5 §3.4.2.1, mqtt.js ErrorWithReasonCode,
    // numeric `code`) is a refusal, e.g. "Not authorized" by an ACL. Anything else is mqtt.js
    // failing the in-flight publishes of a closing link: the connection reports that once.
    if (typeof (err as { code?: unknown }).code !== "number") {
      this.logger.debug({ err, first_seq: batch.first }, "in-flight batch failed with the link");
      return;
    }
    // The records stay in the store; reconnecting (with backoff) retries from the watermark.
    this.logger.error(
      { err, first_seq: batch.first, last_seq: batch.last },
      `broker refused telemetry batch seq ${batch.first}..${batch.last}: ${err.message}`,
    );
    this.onRefused?.(err);
  }

  onRefused?: (err: Error) => void;
}
