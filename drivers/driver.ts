/**
 * The driver contract. A driver owns one field bus or listener (a Modbus line, a packet-forwarder
 * UDP port, a TIC or M-Bus serial port). It knows its protocol and nothing of MQTT or SQLite:
 * it emits `Reading`s and `DriverEvent`s through its context and executes writes it is handed.
 *
 * Lifecycle (model: zigbee2mqtt extensions, Telegraf inputs): the factory validates nothing —
 * the zod schema already did — and the constructor does no I/O; `start()` opens ports and starts
 * polling/listening, and must not throw for a device that is merely offline (that is an event);
 * `stop()` closes everything and resolves when no timer or socket is left.
 */
import type { Logger } from "pino";
import type { DriverConfig } from "./schemas.js";

export type Value = number | boolean | string;

/**
 * Quality of a reading. `good` readings carry a value; the others describe why there is none
 * (or why the value is doubtful) and carry `detail` in plain words.
 */
export type Quality =
  | "good"
  | "uncertain" // a value is present but doubtful (e.g. a TIC horodate with a degraded clock)
  | "timeout" // the device did not answer in time
  | "exception" // the device answered with a protocol exception (detail names the code)
  | "frame_error" // CRC/checksum/framing error on the wire
  | "comm_error" // the bus or port is unavailable
  | "codec_error" // a payload decoder failed
  | "offline"; // the device is known to be offline (backoff in progress)

/** One acquired value (fixed contract, see ARCHITECTURE.md). Scaling happens in the driver. */
export interface Reading {
  device: string;
  point: string;
  /** Acquisition time, ms since the epoch. */
  ts: number;
  /** `null` only when quality is not `good`/`uncertain`. */
  value: Value | null;
  /** SenML unit symbol (RFC 8428 §12.1 / RFC 8798): W, Wh, V, A, Cel, %RH, m3, ppm, lx … */
  unit?: string;
  quality: Quality;
  /** Plain-words reason for a non-good quality. */
  detail?: string;
}

export type EventSeverity = "info" | "warning" | "error";

/** Something that happened, as opposed to a measured value: online/offline, join, gap… */
export interface DriverEvent {
  ts: number;
  /** Stable machine name, e.g. `device_offline`, `device_online`, `lorawan_replay_rejected`. */
  type: string;
  severity: EventSeverity;
  device?: string;
  /** Plain words for a technician. */
  message: string;
  data?: Record<string, unknown>;
}

/**
 * Small durable key/value state for a driver (LoRaWAN sessions and frame counters, DevNonces…).
 * Backed by the store's SQLite database: the store is the only durable state. Writes are
 * synchronous and durable when the call returns.
 */
export interface DriverState {
  get<T = unknown>(key: string): T | undefined;
  set(key: string, value: unknown): void;
  delete(key: string): void;
  /** Keys starting with `prefix`. */
  keys(prefix?: string): string[];
}

export interface DriverContext {
  logger: Logger;
  /** Hand readings to the pipeline. Never blocks; never throws. */
  emit(readings: readonly Reading[]): void;
  /** Hand an event to the pipeline (queued at top priority). */
  event(event: DriverEvent): void;
  state: DriverState;
}

/** A write handed to the driver by the command router, which has already validated it. */
export interface WriteRequest {
  device: string;
  point: string;
  value: Value;
  /** Read the value back after writing and report it. */
  verify?: boolean;
  /** Correlates logs with the command. */
  commandId?: string;
  /** Only for drivers that can send raw payloads (LoRaWAN downlinks from `encodeDownlink`). */
  confirmed?: boolean;
}

export interface WriteResult {
  /** For drivers with deferred delivery (LoRaWAN class A) `queued` is true and `ok` means accepted. */
  ok: boolean;
  queued?: boolean;
  readBack?: Value | null;
  detail?: string;
}

export interface PointInfo {
  id: string;
  unit?: string;
  type: "number" | "boolean" | "string";
  writable: boolean;
  min?: number;
  max?: number;
  /** Enum labels, for documentation and validation of writes. */
  labels?: Record<string, string>;
  description?: string;
}

export interface DeviceInfo {
  id: string;
  driver: string; // driver instance id
  kind: string; // driver kind: modbus, lorawan, tic, mbus
  name?: string;
  points: PointInfo[];
}

export interface DeviceStatus {
  id: string;
  online: boolean;
  lastGoodTs?: number;
  errorCount: number;
  lastError?: string;
  lastErrorTs?: number;
}

export interface DriverStatus {
  id: string;
  kind: string;
  running: boolean;
  /** Plain-words state of the bus/listener: "connected to 10.0.0.5:502", "port /dev/ttyUSB0 missing". */
  detail?: string;
  devices: DeviceStatus[];
  counters?: Record<string, number>;
}

export interface Driver {
  readonly id: string;
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Devices and points with units, for the inventory/birth message and the CLI. */
  inventory(): DeviceInfo[];
  status(): DriverStatus;
  /** Read now, bypassing schedules (and, in the pipeline, the deadband). */
  read(device: string, points?: readonly string[]): Promise<Reading[]>;
  /** Only the command router calls this. */
  write(request: WriteRequest): Promise<WriteResult>;
  /**
   * Optional: take a new configuration block of this driver (same id) without a full restart —
   * remote configuration (`config/set`) uses it so that a change to one meter does not interrupt
   * the twenty others on the same bus. Restart only the devices whose block was added, removed or
   * changed; the others keep polling untouched. Resolve with the ids of the devices restarted,
   * added or removed when applied in place, `false` (having changed nothing) when the change
   * needs a full restart (e.g. the bus settings changed). Drivers without it are stopped,
   * re-created and started.
   */
  reconfigure?(next: DriverConfig): Promise<string[] | false>;
}

/** How a driver kind plugs in: its config block schema and a factory. See drivers/index.ts. */
export interface DriverFactory<C> {
  kind: string;
  create(config: C, ctx: DriverContext): Driver;
}
