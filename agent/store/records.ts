/**
 * Rendering of outbox records. The JSON of each record is rendered once, at ingest, and stored;
 * the uplink only splices in `seq` (which is assigned at commit) and joins records into a
 * payload, so draining a backlog costs no per-record JSON work.
 *
 * Telemetry records follow SenML (RFC 8428 §4): `n` = "<device>/<point>", `t` in seconds since
 * the epoch, `u` a SenML unit, `v` | `vb` | `vs`; plus `seq` and, for readings that are not good,
 * `q` (quality) and `qd` (detail). Fields not ending in "_" are ignorable extensions (§4.4).
 */
import type { DriverEvent, Quality, Reading } from "../../drivers/driver.js";

/** 0 = events and command results, 1 = live telemetry, 2 = historical backfill. */
export type Priority = 0 | 1 | 2;
export const PRIORITIES: readonly Priority[] = [0, 1, 2];
export const PRIORITY_NAMES = ["event", "live", "backfill"] as const;

/** Topic suffix of a record: `<prefix>/<gw>/<stream>`. */
export type Stream = "telemetry" | "events" | (string & {});

/** A record rendered and waiting in the group-commit buffer (no seq yet). */
export interface PendingRecord {
  prio: Priority;
  stream: Stream;
  /** Acquisition / event time, ms. */
  ts: number;
  /** `<device>/<point>` for readings, null for events. */
  name: string | null;
  body: string;
  /** The source object, for in-process listeners (tail); not stored. */
  reading?: Reading;
  event?: DriverEvent;
}

export interface StoredRecord extends PendingRecord {
  seq: number;
}

export interface SenmlRecord {
  seq?: number;
  n: string;
  t: number;
  u?: string;
  v?: number;
  vb?: boolean;
  vs?: string;
  q?: Exclude<Quality, "good">;
  qd?: string;
}

export function senmlOf(r: Reading): SenmlRecord {
  const rec: SenmlRecord = { n: `${r.device}/${r.point}`, t: r.ts / 1000 };
  if (r.unit !== undefined) rec.u = r.unit;
  const v = r.value;
  if (typeof v === "number") rec.v = v;
  else if (typeof v === "boolean") rec.vb = v;
  else if (typeof v === "string") rec.vs = v;
  if (r.quality !== "good") rec.q = r.quality;
  if (r.detail !== undefined && r.quality !== "good") rec.qd = r.detail;
  return rec;
}

export function readingRecord(r: Reading, prio: 1 | 2): PendingRecord {
  return {
    prio,
    stream: "telemetry",
    ts: r.ts,
    name: `${r.device}/${r.point}`,
    body: JSON.stringify(senmlOf(r)),
    reading: r,
  };
}

/** Event records: `{seq, t, type, severity, device?, message, data?}`. */
export function eventRecord(e: DriverEvent): PendingRecord {
  const body: Record<string, unknown> = { t: e.ts / 1000, type: e.type, severity: e.severity };
  if (e.device !== undefined) body.device = e.device;
  body.message = e.message;
  if (e.data !== undefined) body.data = e.data;
  return { prio: 0, stream: "events", ts: e.ts, name: null, body: JSON.stringify(body), event: e };
}

/** The payload of one published batch: `{"epoch":…,"records":[…]}` (docs/mqtt-api.md §3, §7). */
export function batchPayload(epoch: string, parts: readonly string[]): string {
  return `{"epoch":${JSON.stringify(epoch)},"records":[${parts.join(",")}]}`;
}

/** `{"seq":N,…rest of body}` — the body always starts with `{"` and is never empty. */
export function withSeq(seq: number, body: string): string {
  return `{"seq":${seq},${body.slice(1)}`;
}
