/**
 * Wiring of the daemon: store → pipeline → drivers → uplink.
 *
 *   driver.emit ──> Pipeline (sanitize, report-by-exception) ──> Store (group commit) ──> Uplink
 *   driver.event ─────────────────────────────────────────────> Store (top priority)
 *   driver.state <──> Store kv (namespace `driver:<id>`)
 *
 * `Agent` is usable in-process (tests, the demo, the control API): construct, `start()`, use the
 * accessors, `stop()`. The `eclor-edge run` daemon around it (signals, hooks, control socket,
 * command router) is daemon.ts.
 */
import { join } from "node:path";
import type { Logger } from "pino";
import { configHash, gatewayFacts } from "../config/facts.js";
import type { Config } from "../config/schema.js";
import { createDriver } from "../drivers/index.js";
import type {
  DeviceInfo,
  Driver,
  DriverContext,
  DriverStatus,
  Reading,
  WriteRequest,
  WriteResult,
} from "../drivers/driver.js";
import { EdgeError, ErrorCode, describeError } from "../core/errors.js";
import { HealthMonitor } from "./health/monitor.js";
import { loadProvisioner, type ProvisionStep } from "./hooks.js";
import { createLogger } from "./log.js";
import { Pipeline, rulesFromConfig, type Stage } from "./pipeline/index.js";
import { Store, type StoredListener } from "./store/index.js";
import { Uplink, type CommandHandler } from "./uplink/index.js";
import { VERSION } from "./version.js";

export interface AgentOptions {
  configPath?: string;
  logger?: Logger;
  /** Extra driver instances besides `config.drivers` (tests, the demo). */
  extraDrivers?: readonly { id: string; create: (ctx: DriverContext) => Driver }[];
  /** Extra pipeline stages (privacy policy, local rules), run before report-by-exception. */
  stages?: readonly Stage[];
  /** Shown in the `state` message; default: a hash of the configuration. */
  configVersion?: string;
  provision?: ProvisionStep;
  /** Clock for the store (tests). */
  now?: () => number;
}

export class Agent {
  readonly logger: Logger;
  readonly store: Store;
  readonly pipeline: Pipeline;
  readonly uplink: Uplink;
  /** The one health model (agent/health/): watchdog, status, `state`. */
  readonly health: HealthMonitor;
  readonly startedAt = Date.now();
  private readonly driverList: Driver[] = [];
  /** Drivers that could not be created or started, until they start (health model). */
  private readonly failures = new Map<string, { kind: string; reason: string }>();
  private offHealth?: () => void;
  private started = false;

  constructor(
    readonly config: Config,
    private readonly opts: AgentOptions = {},
  ) {
    this.logger = opts.logger ?? createLogger({ level: config.log.level });
    const s = config.store;
    this.store = new Store({
      ...s,
      path: s.path ?? join(config.state_dir, "store.db"),
      logger: this.logger.child({ component: "store" }),
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.pipeline = new Pipeline(
      rulesFromConfig(config.drivers),
      (readings) => this.store.appendReadings(readings),
      this.logger.child({ component: "pipeline" }),
      opts.stages,
    );
    const g = config.gateway;
    this.uplink = new Uplink(
      config.uplink,
      {
        gatewayId: g.id,
        gateway: gatewayFacts(config),
        version: VERSION,
        configVersion: opts.configVersion ?? configHash(config),
        startedAt: this.startedAt,
      },
      this.store,
      () => this.inventory(),
      this.logger.child({ component: "uplink" }),
    );
    this.health = new HealthMonitor({
      store: this.store,
      uplink: this.uplink,
      drivers: () => this.driverStatus(),
      failures: () => this.driverFailures(),
      retryMs: s.retry_ms,
    });
    this.uplink.setHealth(() => this.health.summary());
  }

  private context(driverId: string): DriverContext {
    const logger = this.logger.child({ driver: driverId });
    return {
      logger,
      emit: (readings) => {
        try {
          this.pipeline.ingest(readings);
        } catch (err) {
          logger.error({ err }, "could not queue readings");
        }
      },
      event: (e) => {
        try {
          this.store.appendEvent(e);
        } catch (err) {
          logger.error({ err }, "could not queue event");
        }
      },
      state: this.store.kv(`driver:${driverId}`),
    };
  }

  /** Open the store, create and start the drivers, start the uplink. Resolves without waiting
   * for the broker (see `uplink.whenConnected()`). A driver that fails to start is reported and
   * the rest keep running. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.store.open();
    const provision = this.opts.provision ?? (await loadProvisioner(this.config));
    if (provision && this.store.available) {
      const tls = await provision({
        config: this.config,
        logger: this.logger.child({ component: "provision" }),
        store: this.store,
      });
      if (tls) this.uplink.setTls(tls);
    }
    for (const dc of this.config.drivers) {
      if (!dc.enabled) continue;
      try {
        this.driverList.push(await createDriver(dc, this.context(dc.id)));
      } catch (err) {
        this.driverFailed(dc.id, dc.driver, err);
      }
    }
    for (const extra of this.opts.extraDrivers ?? []) {
      this.driverList.push(extra.create(this.context(extra.id)));
    }
    await Promise.all(
      this.driverList.map(async (d) => {
        try {
          await d.start();
        } catch (err) {
          this.driverFailed(d.id, d.kind, err);
        }
      }),
    );
    this.uplink.start();
    this.health.start();
    // The retained state carries the health: say it again when it changes.
    this.offHealth = this.health.onChange(() => {
      if (this.uplink.connected) this.uplink.publishState();
    });
    this.logger.info(
      { drivers: this.driverList.map((d) => d.id), store: this.store.stats().path },
      `agent started (${this.driverList.length} drivers)`,
    );
  }

  private driverFailed(id: string, kind: string, err: unknown): void {
    const e =
      err instanceof EdgeError
        ? err
        : new EdgeError(
            ErrorCode.DriverStart,
            `driver ${id} failed to start: ${describeError(err)}`,
            { driver: id },
            { cause: err },
          );
    this.logger.error({ err: e, driver: id }, e.message);
    this.failures.set(id, { kind, reason: e.message });
    this.store.appendEvent({
      ts: Date.now(),
      type: "driver_start_failed",
      severity: "error",
      message: e.message,
      data: { driver: id },
    });
  }

  /** Stop drivers, commit what is buffered, publish the offline state, close. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.offHealth?.();
    this.health.stop();
    await Promise.all(
      this.driverList.map((d) =>
        Promise.race([
          d
            .stop()
            .catch((err: unknown) =>
              this.logger.error({ err, driver: d.id }, "driver stop failed"),
            ),
          new Promise((r) => setTimeout(r, 3000).unref()),
        ]),
      ),
    );
    this.store.flush();
    await this.uplink.stop();
    this.store.close();
    this.logger.info("agent stopped");
  }

  // ---- accessors for the control plane, the CLI's control API and tests ----

  get drivers(): readonly Driver[] {
    return this.driverList;
  }

  inventory(): DeviceInfo[] {
    return this.driverList.flatMap((d) => {
      try {
        return d.inventory();
      } catch (err) {
        this.logger.error({ err, driver: d.id }, "driver inventory failed");
        return [];
      }
    });
  }

  /** Drivers that could not be created or started (cleared when they start again). */
  driverFailures(): ReadonlyMap<string, { kind: string; reason: string }> {
    return this.failures;
  }

  driverStatus(): DriverStatus[] {
    return this.driverList.map((d) => d.status());
  }

  /** The driver that owns `device`, or an EdgeError naming the known devices. */
  driverOf(device: string): Driver {
    for (const d of this.driverList) {
      if (d.inventory().some((dev) => dev.id === device)) return d;
    }
    throw new EdgeError(ErrorCode.DeviceUnknown, `unknown device "${device}"`, { device });
  }

  /** Read now through the driver; the readings are stored too, bypassing the deadband. */
  async read(device: string, points?: readonly string[]): Promise<Reading[]> {
    const readings = await this.driverOf(device).read(device, points);
    this.pipeline.ingest(readings, { bypassDeadband: true });
    return readings;
  }

  /** Only the command router may call this (ARCHITECTURE.md invariant 4). */
  write(request: WriteRequest): Promise<WriteResult> {
    return this.driverOf(request.device).write(request);
  }

  /**
   * Remote configuration (agent/commands/config-manager.ts): stop the drivers in `stop`, then
   * create and start those in `start` from `drivers` (a restart is an id in both). The others are
   * not touched. Returns the drivers that failed to be created or started (never throws).
   */
  async replaceDrivers(
    drivers: Config["drivers"],
    ids: { stop: readonly string[]; start: readonly string[] },
  ): Promise<{ id: string; reason: string }[]> {
    const leaving = this.driverList.filter((d) => ids.stop.includes(d.id));
    await Promise.all(
      leaving.map((d) =>
        Promise.race([
          d
            .stop()
            .catch((err: unknown) =>
              this.logger.error({ err, driver: d.id }, "driver stop failed"),
            ),
          new Promise((r) => setTimeout(r, 3000).unref()),
        ]),
      ),
    );
    for (const d of leaving) this.driverList.splice(this.driverList.indexOf(d), 1);
    for (const id of [...ids.stop, ...ids.start]) this.failures.delete(id);
    const failed: { id: string; reason: string }[] = [];
    for (const dc of drivers.filter((x) => ids.start.includes(x.id) && x.enabled)) {
      this.pipeline.addRules(rulesFromConfig([dc]));
      let d: Driver | undefined;
      try {
        d = await createDriver(dc, this.context(dc.id));
        this.driverList.push(d);
        await d.start();
      } catch (err) {
        this.driverFailed(dc.id, dc.driver, err);
        failed.push({ id: dc.id, reason: describeError(err) });
      }
    }
    return failed;
  }

  /** Subscribe to committed readings/events (`eclor-edge tail`). Returns an unsubscribe function. */
  onRecord(listener: StoredListener): () => void {
    return this.store.onStored(listener);
  }

  /** Handle MQTT command requests on `<prefix>/<gw>/cmd/<name>` (`*` for all). */
  onCommand(name: string, handler: CommandHandler): void {
    this.uplink.onCommand(name, handler);
  }

  /** One line for systemd STATUS= and logs. */
  summary(): string {
    const st = this.store.stats();
    const backlog = st.backlog;
    const up = this.uplink.connected ? "uplink connected" : "uplink DOWN";
    const store = st.available
      ? `backlog ${backlog}`
      : `STORE UNAVAILABLE (${st.buffered} in memory)`;
    const h = this.health.summary();
    const health = h.status === "ok" ? "" : `; ${h.status.toUpperCase()}: ${h.reasons[0]!.message}`;
    return `${up}, ${store}, ${this.driverList.length} drivers${health}`;
  }
}
