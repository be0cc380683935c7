/**
 * What the parts of the network server share (dedup.ts, join.ts, uplink.ts, downlink-queue.ts,
 * readings.ts, wired together by network.ts): the config, the durable state, the logger, one set
 * of counters (shown in the driver status) and the way to raise a driver event. Kept apart so
 * each part depends on this small surface rather than on the network class.
 */
import type { Logger } from "pino";
import type { DriverContext, DriverEvent, EventSeverity } from "../driver.js";
import type { LorawanDriverConfig } from "./schema.js";
import type { EventThrottle } from "./event-throttle.js";
import type { LorawanState } from "./sessions.js";

/** The network server's counters, in the order the driver status lists them. */
export function newNetworkCounters() {
  return {
    frames: 0,
    duplicates: 0,
    joins: 0,
    join_unknown: 0,
    uplinks: 0,
    unknown_devaddr: 0,
    mic_failed: 0,
    replays: 0,
    retransmissions: 0,
    devnonce_reused: 0,
    invalid_frames: 0,
    codec_errors: 0,
    decoded: 0,
    downlinks: 0,
  };
}

export type NetworkCounters = ReturnType<typeof newNetworkCounters>;

/** Raise a driver event stamped now. */
export type RaiseEvent = (
  type: string,
  severity: EventSeverity,
  message: string,
  device?: string,
  data?: Record<string, unknown>,
) => void;

export function eventRaiser(ctx: DriverContext): RaiseEvent {
  return (type, severity, message, device, data) => {
    const e: DriverEvent = {
      ts: Date.now(),
      type,
      severity,
      message,
      ...(device !== undefined ? { device } : {}),
      ...(data ? { data } : {}),
    };
    ctx.event(e);
  };
}

export interface NetContext {
  readonly cfg: LorawanDriverConfig;
  readonly state: LorawanState;
  readonly log: Logger;
  readonly counters: NetworkCounters;
  readonly event: RaiseEvent;
  /** For causes that can repeat at will (MIC failures, replays): raised once, then summed up. */
  readonly throttled: EventThrottle;
}
