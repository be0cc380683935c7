/**
 * The one health model of the agent (ARCHITECTURE.md "Health"): computed here and read by the
 * systemd watchdog (agent/daemon.ts), `eclor-edge status` and the container HEALTHCHECK (through
 * the status view, view.ts), the retained `state` message and the MQTT `status` command.
 *
 * What it looks at, and what each finding does (README.md in this folder says why):
 *
 *   store cannot be written ─────────────── failed    watchdog stops once it lasts 3 × retry_ms,
 *                                                     if the store was writable since the start
 *   driver failed to start / its bus unusable  degraded  (a restart would not fix it)
 *   driver not running ─────────────────────── degraded
 *   uplink not connected ───────────────────── degraded  (readings wait in the store)
 *   event loop slow (p99 > 500 ms or max > 2 s) degraded; a frozen loop stops the pings by itself
 *
 * "Store writable" is the store's own last result (its last commit or open failed: `store.error`)
 * and, when nothing was committed for PROBE_IDLE_MS (an idle gateway), a real write probe: one
 * key of the kv table written through the store's connection.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import type { DriverState, DriverStatus } from "../../drivers/driver.js";
import { describeError } from "../../core/errors.js";
import type { StoredListener } from "../store/store.js";
import type { HealthReason, HealthStatus, HealthSummary } from "./schema.js";

/** What the monitor reads (the Agent provides it; tests may too). */
export interface HealthSources {
  store: {
    readonly available: boolean;
    readonly error: Error | undefined;
    onStored(l: StoredListener): () => void;
    kv(namespace: string): DriverState;
  };
  uplink: { readonly connected: boolean; readonly lastError: string | undefined };
  drivers(): DriverStatus[];
  /** Drivers that could not be created or started, by id. */
  failures(): ReadonlyMap<string, { kind: string; reason: string }>;
  /** store.retry_ms: the store retries this often; the watchdog waits three retries. */
  retryMs: number;
}

export interface DriverHealth {
  id: string;
  kind: string;
  state: "started" | "stopped" | "failed";
  error?: string;
}

export interface HealthReport extends HealthSummary {
  store: { writable: boolean; error?: string };
  drivers: DriverHealth[];
  eventLoop: { lagP99Ms: number; lagMaxMs: number };
}

export interface HealthMonitorOptions {
  /** Event-loop window and probe period (ms). */
  intervalMs?: number;
  /** Probe the store when nothing was committed for this long (ms). */
  probeIdleMs?: number;
  /** Event-loop delays that degrade (ms); defaults LAG_P99_DEGRADED_MS, LAG_MAX_DEGRADED_MS. */
  lagP99Ms?: number;
  lagMaxMs?: number;
  now?: () => number;
}

export const LAG_P99_DEGRADED_MS = 500;
export const LAG_MAX_DEGRADED_MS = 2000;
const PROBE_IDLE_MS = 15_000;

/** Classify one running driver from its own status (drivers/driver.ts `DriverStatus`). */
export function driverHealth(s: DriverStatus): DriverHealth {
  const base = { id: s.id, kind: s.kind };
  if (!s.running) return { ...base, state: "stopped", ...(s.detail ? { error: s.detail } : {}) };
  // Drivers do not fail start() for a device that is merely offline (drivers/driver.ts): a bus
  // that cannot be opened shows as every device offline with an error. A device not polled or
  // heard yet (no error) does not count: a LoRaWAN sensor may report once an hour.
  const failing = (d: DriverStatus["devices"][number]) =>
    !d.online && (d.lastError !== undefined || d.errorCount > 0);
  if (s.devices.length > 0 && s.devices.every(failing)) {
    const why = s.devices.find((d) => d.lastError)?.lastError ?? s.detail;
    return { ...base, state: "failed", error: `no device answers${why ? `: ${why}` : ""}` };
  }
  return { ...base, state: "started" };
}

export class HealthMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  private lag = { lagP99Ms: 0, lagMaxMs: 0 };
  private timer?: NodeJS.Timeout;
  private offStored?: () => void;
  private lastCommit: number;
  private probeError: string | undefined;
  private everWritable = false;
  private unwritableSince: number | undefined;
  private lastKey = "";
  private readonly listeners = new Set<(r: HealthReport) => void>();
  private gaps = 0;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly probeIdleMs: number;
  private readonly lagLimits: { p99: number; max: number };

  constructor(
    private readonly src: HealthSources,
    opts: HealthMonitorOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 5000;
    this.probeIdleMs = opts.probeIdleMs ?? PROBE_IDLE_MS;
    this.lagLimits = {
      p99: opts.lagP99Ms ?? LAG_P99_DEGRADED_MS,
      max: opts.lagMaxMs ?? LAG_MAX_DEGRADED_MS,
    };
    this.lastCommit = this.now();
  }

  /** Gap events committed since the start (status view). */
  get gapEvents(): number {
    return this.gaps;
  }

  start(): void {
    if (this.timer) return;
    this.histogram.enable();
    this.offStored = this.src.store.onStored((records) => {
      this.lastCommit = this.now();
      this.probeError = undefined;
      for (const r of records) if (r.event?.type === "gap") this.gaps++;
    });
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.refreshStore();
    this.lastKey = keyOf(this.check());
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.histogram.disable();
    this.offStored?.();
  }

  /** Called with the new report when the status or the set of reasons changes. */
  onChange(fn: (r: HealthReport) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** One window: event-loop lag, store probe, change notification. */
  tick(): void {
    const h = this.histogram;
    if (h.count > 0) this.lag = { lagP99Ms: h.percentile(99) / 1e6, lagMaxMs: h.max / 1e6 };
    h.reset();
    const st = this.src.store;
    if (st.available && !st.error && this.now() - this.lastCommit >= this.probeIdleMs) this.probe();
    const r = this.check();
    const key = keyOf(r);
    if (key === this.lastKey) return;
    this.lastKey = key;
    for (const l of this.listeners) l(r);
  }

  private probe(): void {
    try {
      this.src.store.kv("agent:health").set("probe", this.now());
      this.probeError = undefined;
      this.lastCommit = this.now();
    } catch (e) {
      this.probeError = `write probe failed: ${describeError(e)}`;
    }
  }

  private refreshStore(): { writable: boolean; error?: string } {
    const st = this.src.store;
    const error = st.error?.message ?? this.probeError;
    const writable = st.available && error === undefined;
    if (writable) {
      this.everWritable = true;
      this.unwritableSince = undefined;
    } else this.unwritableSince ??= this.now();
    return {
      writable,
      ...(writable ? {} : { error: error ?? "the store database is not open" }),
    };
  }

  /**
   * May the systemd watchdog be pinged? No once the store, writable earlier in this run, has
   * been unwritable for three of its retries: a restart reopens the file (a handle to a file
   * moved aside, a device that went away and came back). A store that could not be used since
   * the start does not stop the pings: a restart would meet the same file and loop; the agent
   * stays up, reports `failed` and keeps retrying (agent/store/store.ts).
   */
  watchdogOk(): boolean {
    this.refreshStore();
    if (!this.everWritable || this.unwritableSince === undefined) return true;
    return this.now() - this.unwritableSince < 3 * this.src.retryMs;
  }

  check(): HealthReport {
    const reasons: HealthReason[] = [];
    const store = this.refreshStore();
    if (!store.writable)
      reasons.push({
        component: "store",
        severity: "failed",
        message: `the store cannot be written: ${store.error}`,
      });
    const drivers: DriverHealth[] = [];
    const running = new Set<string>();
    for (const s of this.src.drivers()) {
      running.add(s.id);
      drivers.push(driverHealth(s));
    }
    for (const [id, f] of this.src.failures()) {
      if (!running.has(id)) drivers.push({ id, kind: f.kind, state: "failed", error: f.reason });
      else {
        const d = drivers.find((x) => x.id === id)!;
        Object.assign(d, { state: "failed", error: f.reason });
      }
    }
    for (const d of drivers) {
      if (d.state === "started") continue;
      reasons.push({
        component: "driver",
        driver: d.id,
        severity: "degraded",
        message:
          d.state === "failed"
            ? `driver "${d.id}" (${d.kind}) failed: ${d.error ?? "unknown error"}`
            : `driver "${d.id}" (${d.kind}) is not running${d.error ? `: ${d.error}` : ""}`,
      });
    }
    const up = this.src.uplink;
    if (!up.connected)
      reasons.push({
        component: "uplink",
        severity: "degraded",
        message: `the uplink is not connected${up.lastError ? `: ${up.lastError}` : " (connecting; readings wait in the store)"}`,
      });
    const lag = this.lag;
    if (lag.lagP99Ms > this.lagLimits.p99 || lag.lagMaxMs > this.lagLimits.max)
      reasons.push({
        component: "event_loop",
        severity: "degraded",
        message: `the event loop is slow: 99th percentile delay ${Math.round(lag.lagP99Ms)} ms, largest ${Math.round(lag.lagMaxMs)} ms over the last ${this.intervalMs / 1000} s`,
      });
    const status: HealthStatus = reasons.some((r) => r.severity === "failed")
      ? "failed"
      : reasons.length > 0
        ? "degraded"
        : "ok";
    return { status, reasons, store, drivers, eventLoop: { ...lag } };
  }

  /** The part of the report the retained `state` message carries. */
  summary(): HealthSummary {
    const { status, reasons } = this.check();
    return { status, reasons };
  }
}

/** Changes worth a new `state` message: the status, and which component/driver is wrong (not
 * the wording, which may carry a countdown such as "retrying in 2.1 s"). */
function keyOf(r: HealthReport): string {
  return `${r.status}|${r.reasons.map((x) => `${x.component}:${x.driver ?? ""}:${x.severity}`).join(",")}`;
}
