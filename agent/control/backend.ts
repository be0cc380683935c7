/**
 * What the control API needs from the running agent, as one narrow interface. The agent wiring
 * provides an implementation (see agent-backend.ts); the unit tests provide a small in-memory
 * one. The shapes here are what the CLI prints and what `--json` returns, so they are part of
 * the technician-facing contract (docs/operations.md).
 */
import type { EdgeError } from "../../core/errors.js";
import type { DeviceInfo, DriverEvent, Reading, Value, WriteResult } from "../../drivers/driver.js";
import type { StatusView } from "../health/schema.js";
import type { LogRing } from "./logring.js";

/** The one status view (agent/health/schema.ts), shared with the MQTT `status` command. */
export type { StatusView } from "../health/schema.js";

/** A stored reading with its outbox sequence number (when it went through the store). */
export type StoredReading = Reading & { seq?: number };

export type TailItem =
  { kind: "reading"; reading: StoredReading } | { kind: "event"; event: DriverEvent; seq?: number };

export interface WriteOutcome extends WriteResult {
  commandId: string;
  /** The router found this command id in its journal and did not write again. */
  duplicate?: boolean;
}

export interface BufferStats {
  path: string;
  bytes: number;
  maxBytes: number;
  unsent: number;
  oldestUnsentTs?: number;
  history: number;
  oldestHistoryTs?: number;
  gaps: number;
  droppedReadings: number;
  lastSeq?: number;
}

export interface ExportQuery {
  from?: number;
  to?: number;
  device?: string;
  point?: string;
  /** Include readings not yet sent (default true). */
  unsent?: boolean;
}

/**
 * Purge deletes history only (records the broker acknowledged). Unsent readings are never purged
 * by hand: they leave the box, or the store drops the oldest when full and queues a gap event.
 */
export interface PurgeQuery {
  /** Only records acquired before this time (ms); default: all history. */
  before?: number;
}

export interface PurgeResult {
  deleted: number;
}

/** A bus or listener the agent owns, so direct commissioning commands do not fight it. */
export interface BusInfo {
  driver: string;
  kind: string;
  /** Serial device path, when the bus is serial. */
  path?: string;
  host?: string;
  port?: number;
  /** Devices on this bus with their bus address (Modbus unit id, M-Bus primary address). */
  devices?: { id: string; address?: number }[];
}

export interface ControlBackend {
  status(): Promise<StatusView> | StatusView;
  inventory(): DeviceInfo[];
  /** Latest stored value of every point (of one device). */
  latest(device?: string): StoredReading[];
  read(device: string, points?: string[]): Promise<Reading[]>;
  /** Through the command router, audited as a local technician action. */
  write(req: {
    device: string;
    point: string;
    value: Value;
    commandId: string;
    /** The connection's peer (`local:uid=1000`), for the audit. */
    who?: `local:${string}`;
    confirmed?: boolean;
  }): Promise<WriteOutcome>;
  /** Audit a request refused before it reached the command service (unknown device on read…). */
  auditRefusal?(method: string, who: `local:${string}`, e: EdgeError): void;
  subscribe(fn: (item: TailItem) => void): () => void;
  bufferStats(): BufferStats;
  bufferExport(q: ExportQuery): Iterable<StoredReading>;
  bufferPurge(q: PurgeQuery): PurgeResult;
  buses(): BusInfo[];
  logs?: LogRing;
  /** Any command of the command service as the local technician (`eclor-edge lighting`). */
  command?(name: string, body: Record<string, unknown>): Promise<unknown>;
}
