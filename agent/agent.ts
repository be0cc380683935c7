/**
 * Wiring of the daemon: store → pipeline → drivers → uplink.
 *
 *   driver.emit ──> Pipeline (sanitize, report-by-exception) ──> Store (group commit) ──> Uplink
 *   driver.event ─────────────────────────────────────────────> Store (top priority)
 *   driver.state <──> Store kv (namespace `driver:<id>`)
 *
 * `Agent` is usable in-process (tests, the demo, the control API): construct, `start()`, use the
 * accessors, `stop()`. `runAgent` is the `eclor-edge run` daemon around it (signals, hooks).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "pino";
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
import { loadNotifier, loadProvisioner, type Notifier, type ProvisionStep } from "./hooks.js";
import { createLogger } from "./log.js";
import { Pipeline, rulesFromConfig, type Stage } from "./pipeline/index.js";
import { Store, type StoredListener } from "./store/index.js";
import { lockStateDir } from "./store/db.js";
import { Uplink, type CommandHandler, type UplinkIdentity } from "./uplink/index.js";
import { VERSION } from "./version.js";
import { attachWhenReady } from "./commands/control-plane.js";
import { resolveStartupConfig } from "./commands/startup.js";
import { LogRing, startControl } from "./control/index.js";

export interface RunOptions {
  configPath: string;
}

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

/** Short stable hash of a configuration, for `config_version` in the state message. */
export function configHash(config: Config): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 12);
}

/** The gateway block of the inventory message. */
export function gatewayFacts(config: Config): UplinkIdentity["gateway"] {
  const g = config.gateway;
  return {
    id: g.id,
    ...(g.name !== undefined ? { name: g.name } : {}),
    ...(g.commune !== undefined ? { commune: g.commune } : {}),
    ...(g.location !== undefined ? { location: g.location } : {}),
  };
}

export class Agent {
  readonly logger: Logger;
  readonly store: Store;
  readonly pipeline: Pipeline;
  readonly uplink: Uplink;
  private readonly driverList: Driver[] = [];
  private readonly startedAt = Date.now();
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
        this.driverFailed(dc.id, err);
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
          this.driverFailed(d.id, err);
        }
      }),
    );
    this.uplink.start();
    this.logger.info(
      { drivers: this.driverList.map((d) => d.id), store: this.store.stats().path },
      `agent started (${this.driverList.length} drivers)`,
    );
  }

  private driverFailed(id: string, err: unknown): void {
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
    const failed: { id: string; reason: string }[] = [];
    for (const dc of drivers.filter((x) => ids.start.includes(x.id) && x.enabled)) {
      this.pipeline.addRules(rulesFromConfig([dc]));
      let d: Driver | undefined;
      try {
        d = await createDriver(dc, this.context(dc.id));
        this.driverList.push(d);
        await d.start();
      } catch (err) {
        this.driverFailed(dc.id, err);
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
    const backlog = st.pending.event + st.pending.live + st.pending.backfill + st.buffered;
    const up = this.uplink.connected ? "uplink connected" : "uplink DOWN";
    const store = st.available
      ? `backlog ${backlog}`
      : `STORE UNAVAILABLE (${st.buffered} in memory)`;
    return `${up}, ${store}, ${this.driverList.length} drivers`;
  }
}

/** The `eclor-edge run` daemon: start, notify, stop cleanly on SIGTERM/SIGINT, exit 0. */
export async function runAgent(fileConfig: Config, opts: RunOptions): Promise<void> {
  // The control API serves the recent lines to `eclor-edge logs` (agent/control/logring.ts).
  const logRing = new LogRing();
  const logger = createLogger({ level: fileConfig.log.level, tee: logRing });
  // One agent per state directory (issue 14.7): before the store is opened.
  lockStateDir(fileConfig.state_dir);
  const notifier: Notifier = await loadNotifier(logger.child({ component: "systemd" }));
  // The local file or the last remote configuration (precedence: agent/commands/config-versions.ts).
  const startup = resolveStartupConfig(opts.configPath, fileConfig, { record: true, logger });
  logger.info({ source: startup.source, config_version: startup.version?.version }, startup.reason);
  const config = startup.config;
  const agent = new Agent(config, { configPath: opts.configPath, logger });
  await agent.start();
  const control = await startControl(agent, config, { logs: logRing, logger });
  const stopCommands = attachWhenReady(
    agent,
    {
      config,
      raw: startup.raw,
      configPath: opts.configPath,
      fileHash: startup.fileHash,
      logger,
    },
    (cp) => control.setWriter(cp),
  );
  notifier.ready();
  let last = "";
  const tick = (): void => {
    const s = agent.summary();
    if (s !== last) notifier.status(s);
    last = s;
  };
  tick();
  const statusTimer = setInterval(tick, 5000);
  const forceStatus = setInterval(() => notifier.status(agent.summary()), 30_000);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      logger.info({ signal: sig }, `received ${sig}, stopping`);
      notifier.stopping();
      resolve();
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  clearInterval(statusTimer);
  clearInterval(forceStatus);
  const hard = setTimeout(() => {
    logger.error("clean stop took longer than 8 s; exiting anyway (committed readings are safe)");
    logger.flush();
    process.exit(1);
  }, 8000);
  stopCommands();
  await control.close();
  await agent.stop();
  clearTimeout(hard);
  logger.flush();
  process.exit(0);
}
