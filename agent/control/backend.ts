/**
 * What the control API needs from the running agent, as one narrow interface. The agent wiring
 * provides an implementation (see agent-backend.ts); the unit tests provide a small in-memory
 * one. The shapes here are what the CLI prints and what `--json` returns, so they are part of
 * the technician-facing contract (docs/operations.md).
 */
import type {
  DeviceInfo,
  DriverEvent,
  DriverStatus,
  Reading,
  Value,
  WriteResult,
} from "../../drivers/driver.js";
import type { LogRing } from "./logring.js";

export interface UplinkStatusView {
  connected: boolean;
  /** Broker URL without credentials. */
  broker: string;
  lastPublishTs?: number;
  lastError?: string;
  /** Records waiting to be sent, and the acquisition time of the oldest. */
  backlog: number;
  backlogOldestTs?: number;
}

export interface StoreStatusView {
  path: string;
  bytes: number;
  maxBytes: number;
  unsent: number;
  oldestUnsentTs?: number;
  /** Readings dropped because the store was full (each also sent upstream as a gap event). */
  gaps: number;
  droppedReadings: number;
  /** Plain-words problem with the database file, when there is one. */
  error?: string;
}

/** Zero-touch enrolment (issue 10), present when the config has a `provisioning:` block. */
export interface ProvisioningStatusView {
  /** none | enrolling | failed | enrolled | expired (agent/provision/state.ts). */
  status: string;
  /** One line in plain words, with the last error and the next retry when there is one. */
  summary: string;
  /** True when a person must act (refused token, expired certificate, failed renewal). */
  attention: boolean;
}

export interface StatusView {
  gateway: { id: string; name?: string };
  provisioning?: ProvisioningStatusView;
  version: string;
  pid: number;
  startedAt: number;
  now: number;
  uplink: UplinkStatusView;
  store: StoreStatusView;
  drivers: DriverStatus[];
}

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
    confirmed?: boolean;
  }): Promise<WriteOutcome>;
  subscribe(fn: (item: TailItem) => void): () => void;
  bufferStats(): BufferStats;
  bufferExport(q: ExportQuery): Iterable<StoredReading>;
  bufferPurge(q: PurgeQuery): PurgeResult;
  buses(): BusInfo[];
  logs?: LogRing;
}
