/**
 * Wires the control plane onto a running `Agent`: journal, audit, rate limit, router, config
 * manager, optional signature verifier, the MQTT dispatcher (registered as the uplink's command
 * handler) — and the API of the local control socket (issue 8): `execute(name, body)` runs any
 * command as the local technician, e.g. `execute("write", {device, point, value})`.
 */
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../../config/schema.js";
import type { Agent } from "../agent.js";
import { EdgeError, ErrorCode, type ErrorCodeValue } from "../../core/errors.js";
import { VERSION } from "../version.js";
import type { Value, WriteResult } from "../../drivers/driver.js";
import { AuditLog } from "./audit.js";
import { applyToAgent } from "./config-apply.js";
import { ConfigManager } from "./config-manager.js";
import type { ApplyPlan, ApplyReport, ConfigHost } from "./config-plan.js";
import { ConfigVersions } from "./config-versions.js";
import { CommandDispatcher } from "./dispatcher.js";
import { buildStatusView } from "../health/view.js";
import { queryHistory, replayPayloads } from "./history.js";
import { Journal } from "./journal.js";
import { RateLimiter } from "./rate-limit.js";
import { CommandRouter, type WriteResultBody } from "./router.js";
import type { Who } from "./journal.js";
import type { CommandResponse } from "./schemas.js";
import { type ControlTarget, CommandService } from "./service.js";
import { parsePublicKey } from "../../config/ed25519.js";
import { SignatureVerifier } from "./signing.js";
import type { ClockSource } from "../lighting/clock.js";
import { LightingService } from "../lighting/service.js";

export interface ControlPlaneOptions {
  /** The configuration the agent runs (after the precedence rule, see config-versions.ts). */
  config: Config;
  /** Its raw form (before `${ENV}`/`file:` resolution), shown by config/get. */
  raw: Record<string, unknown>;
  configPath?: string | undefined;
  /** SHA-256 of the local file in force. */
  fileHash?: string | undefined;
  logger?: Logger;
  /** Poll period of the rollback health check (tests). */
  healthPollMs?: number;
  /** The lighting module's clock (tests drive wall time, monotonic time and sync). */
  lightingClock?: ClockSource;
}

/** Seqs read per replay page (see `replay` below). */
const REPLAY_PAGE = 1000;

export class ControlPlane {
  readonly journal: Journal;
  readonly audit: AuditLog;
  readonly router: CommandRouter;
  readonly service: CommandService;
  readonly dispatcher: CommandDispatcher;
  readonly configManager: ConfigManager;
  readonly versions: ConfigVersions;
  readonly lighting: LightingService;
  private current: Config;
  private readonly pruneTimer: NodeJS.Timeout;

  private constructor(
    private readonly agent: Agent,
    opts: ControlPlaneOptions,
  ) {
    const cfg = opts.config;
    const logger = (opts.logger ?? agent.logger).child({ component: "commands" });
    this.current = cfg;
    const db = agent.store.db;
    this.journal = new Journal(db);
    const prune = (): void => {
      try {
        this.journal.prune(cfg.commands.journal_days * 86_400_000);
      } catch (err) {
        logger.error({ err }, "could not prune the command journal");
      }
    };
    prune();
    // Daily, so a gateway that runs for months keeps its journal bounded.
    this.pruneTimer = setInterval(prune, 86_400_000);
    this.pruneTimer.unref();
    this.audit = new AuditLog(db, (e) => agent.store.appendEvent(e));
    this.versions = new ConfigVersions(db);
    this.router = new CommandRouter({
      target: agent,
      journal: this.journal,
      audit: this.audit,
      limiter: new RateLimiter(cfg.commands.rate_limit.burst, cfg.commands.rate_limit.per_minute),
      timeoutMs: cfg.commands.timeout,
    });
    const host: ConfigHost = {
      current: () => this.current,
      apply: (next, plan) => this.apply(next, plan),
      health: () => this.health(),
    };
    this.configManager = new ConfigManager(
      {
        host,
        versions: this.versions,
        journal: this.journal,
        audit: this.audit,
        refs: {
          env: process.env,
          baseDir: opts.configPath ? dirname(opts.configPath) : process.cwd(),
        },
        fileHash: () => opts.fileHash ?? null,
        filePath: opts.configPath ?? null,
        rollbackWindowMs: cfg.commands.rollback_window,
        remoteAllowed: cfg.commands.remote_config,
        logger,
        // Uplink changes reconnect at once (Uplink.reconfigure) and are rolled back if the new
        // broker cannot be reached within the window.
        liveUplink: true,
        event: (e) => agent.store.appendEvent(e),
        ...(opts.healthPollMs ? { pollMs: opts.healthPollMs } : {}),
      },
      opts.raw,
    );
    // Lamps are driven through the router like any caller (who: lighting): agent/lighting.
    this.lighting = new LightingService({
      db,
      config: cfg,
      fileBlock: opts.raw.lighting,
      router: this.router,
      target: { inventory: () => agent.inventory(), read: (d, p) => agent.read(d, p) },
      journal: this.journal,
      audit: this.audit,
      event: (e) => agent.store.appendEvent(e),
      emit: (r) => agent.pipeline.ingest(r, { bypassDeadband: true }),
      onRecord: (l) => agent.onRecord(l),
      clock: opts.lightingClock,
      logger,
    });
    const signing = cfg.commands.signing;
    this.service = new CommandService({
      lighting: this.lighting,
      target: controlTarget(agent, () => this.current),
      router: this.router,
      config: this.configManager,
      verifier: signing
        ? new SignatureVerifier({
            db,
            publicKey: parsePublicKey(signing.public_key),
            gatewayId: cfg.gateway.id,
            maxSkewMs: signing.max_skew,
          })
        : undefined,
      timeoutMs: cfg.commands.timeout,
      logger,
      audit: this.audit,
      readLimiter: new RateLimiter(
        cfg.commands.read_rate_limit.burst,
        cfg.commands.read_rate_limit.per_minute,
      ),
    });
    this.dispatcher = dispatcherFor(agent, cfg, this.service, logger);
  }

  /**
   * Attach to a started agent (its store must be open): registers the MQTT command handler.
   * Throws EdgeError(StoreUnavailable) when the store cannot be used — commands need the journal.
   */
  static attach(agent: Agent, opts: ControlPlaneOptions): ControlPlane {
    const cp = new ControlPlane(agent, opts);
    listen(agent, cp.dispatcher);
    cp.lighting.start();
    return cp;
  }

  /** Stop the control plane's timers (the agent stops the rest). */
  close(): void {
    clearInterval(this.pruneTimer);
    void this.lighting.stop();
    // The refusals counted in the current window are recorded, not lost.
    this.audit.flush();
  }

  /** The local control API's entry point: run a command as the local technician. */
  execute(name: string, body: Record<string, unknown>): Promise<CommandResponse> {
    return this.service.execute(name, body, { who: "local" });
  }

  /**
   * `eclor-edge write` through the control socket (agent/control/backend.ts): the same command
   * service as MQTT (one schema, one router, one audit — issue 19.2), as the local technician
   * `who` (the socket's peer uid, issue 14.6). Refusals and failures throw an EdgeError with the
   * service's code and words.
   */
  async localWrite(req: {
    device: string;
    point: string;
    value: Value;
    commandId: string;
    who?: Who;
    confirmed?: boolean;
  }): Promise<WriteResult & { commandId: string; duplicate?: boolean }> {
    const r = await this.service.execute(
      "write",
      {
        id: req.commandId,
        device: req.device,
        point: req.point,
        value: req.value,
        ...(req.confirmed ? { confirmed: true } : {}),
      },
      { who: req.who ?? "local" },
    );
    if (!r.ok || !r.result) {
      const err = r.error ?? { ecode: ErrorCode.CommandFailed, message: "no result", details: {} };
      throw new EdgeError(err.ecode as ErrorCodeValue, err.message, {
        ...err.details,
        command_id: r.id ?? req.commandId,
        ...(r.duplicate ? { duplicate: true } : {}),
      });
    }
    const p = (r.result as WriteResultBody).results[0]!;
    return {
      ok: p.ok,
      commandId: r.id ?? req.commandId,
      ...(p.queued ? { queued: true } : {}),
      ...(p.read_back !== undefined ? { readBack: p.read_back } : {}),
      ...(p.detail ? { detail: p.detail } : {}),
      ...(r.duplicate ? { duplicate: true } : {}),
    };
  }

  /** A control-socket request refused before the service (e.g. read of an unknown device). */
  auditRefusal(method: string, who: Who, e: EdgeError): void {
    this.service.auditRefusal(method, null, who, e);
  }

  private async apply(next: Config, plan: ApplyPlan): Promise<ApplyReport> {
    const r = await applyToAgent(this.agent, this.current, next, plan);
    this.current = next;
    return { reconfigured: r.reconfigured };
  }

  /**
   * A driver is healthy when it runs and, if it has devices, at least one of them answers: a bus
   * that cannot be opened (missing serial port, unreachable host) shows as every device offline,
   * since drivers do not fail `start()` for a device that is merely offline (drivers/driver.ts).
   */
  private health(): ReturnType<ConfigHost["health"]> {
    // Start failures as the agent records them for the health model (agent/health/).
    const failed = [...this.agent.driverFailures()].map(([id, f]) => ({ id, reason: f.reason }));
    for (const s of this.agent.driverStatus()) {
      if (failed.some((f) => f.id === s.id)) continue;
      if (!s.running) failed.push({ id: s.id, reason: s.detail || "not running" });
      else if (s.devices.length > 0 && !s.devices.some((d) => d.online)) {
        const why = s.devices.find((d) => d.lastError)?.lastError ?? s.detail;
        failed.push({ id: s.id, reason: `no device answers${why ? `: ${why}` : ""}` });
      }
    }
    return {
      failed,
      uplinkConnected: this.agent.uplink.connected,
      uplinkError: this.agent.uplink.lastError,
    };
  }
}

/** What the commands read and do on the agent (service.ts `ControlTarget`). */
function controlTarget(agent: Agent, current: () => Config): ControlTarget {
  return {
    version: VERSION,
    // The agent's start time, as announced in its retained state message.
    startedAt: agent.startedAt,
    inventory: () => agent.inventory(),
    write: (r) => agent.write(r),
    read: (device, points) => agent.read(device, points),
    status: () => buildStatusView(agent),
    history: (q) => queryHistory(agent.store, q),
    replay: async (from, to) => {
      agent.store.flush();
      const store = agent.store;
      const uplink = agent.uplink;
      // Chunked to the broker's Maximum Packet Size (publish gate, uplink/gate.ts).
      const room = uplink.payloadRoom(uplink.topics.telemetry);
      let count = 0;
      let stored = 0;
      const tooLarge: number[] = [];
      // Page by REPLAY_PAGE seqs: each page is a few ms of SQLite, and the publishes of one page
      // are awaited before the next is read, so a 100 000-seq replay never stalls polling.
      for (let lo = from; lo <= to; lo += REPLAY_PAGE) {
        const hi = Math.min(to, lo + REPLAY_PAGE - 1);
        const r = replayPayloads(store, lo, hi, current().uplink.batch_size, room);
        stored += r.stored;
        tooLarge.push(...r.tooLarge);
        for (const b of r.batches) {
          const ok = await uplink.publish(uplink.topics.stream(b.stream), b.payload, { qos: 1 });
          if (!ok) {
            throw new EdgeError(
              ErrorCode.UplinkConnect,
              `replay interrupted after ${count} records: the uplink is not connected — repeat the replay`,
              { published: count },
            );
          }
          count += b.count;
        }
      }
      const never = store.neverAssigned(from, to);
      const neverCount = never ? never.to_seq - never.from_seq + 1 : 0;
      return {
        epoch: store.epoch,
        from_seq: from,
        to_seq: to,
        count,
        missing: to - from + 1 - stored - neverCount,
        never_assigned: never,
        ...(tooLarge.length > 0 ? { too_large: tooLarge } : {}),
      };
    },
    resync: async () => {
      agent.uplink.resync();
      return [agent.uplink.topics.state, agent.uplink.topics.inventory];
    },
  };
}

function dispatcherFor(
  agent: Agent,
  cfg: Config,
  service: CommandService,
  logger: Logger,
): CommandDispatcher {
  return new CommandDispatcher({
    maxInFlight: cfg.commands.max_in_flight,
    // The prefix in force: config/set may change it.
    prefix: () => agent.uplink.prefix,
    gatewayId: cfg.gateway.id,
    service,
    publisher: {
      publish: async (topic, payload, correlationData, qos = 1) => {
        const ok = await agent.uplink.publish(topic, payload, {
          qos,
          ...(correlationData ? { properties: { correlationData } } : {}),
        });
        if (!ok)
          logger.warn(
            { topic },
            "response not delivered (uplink down): the hypervisor will repeat the request",
          );
      },
    },
    logger,
  });
}

/** Hand every command request of the uplink to `dispatcher` (replaces the previous one). */
function listen(agent: Agent, dispatcher: CommandDispatcher): void {
  agent.onCommand("*", (m) =>
    dispatcher.handle({
      topic: m.topic,
      payload: m.payload,
      responseTopic: m.responseTopic,
      correlationData: m.correlationData,
      retain: m.retain ?? false,
    }),
  );
}

/**
 * While the store cannot be used (issue 15.3), the hypervisor must still be able to ask how the
 * gateway is: `ping`, `status` and `resync` answer through the same service and schemas, without
 * the journal; commands that need it (write, config, history, replay) get an error response
 * naming the store's problem. Signatures are not checked in this mode: the verifier's nonces
 * live in the store, and these three commands change nothing.
 */
function attachStoreless(agent: Agent, opts: ControlPlaneOptions, logger: Logger): void {
  const unavailable = (): EdgeError => {
    const why = agent.store.error?.message ?? "the store database is not open";
    return new EdgeError(
      ErrorCode.StoreUnavailable,
      `refused while the store cannot be used (${why}): the command journal lives in it — ping, status and resync still answer`,
    );
  };
  const service = new CommandService({
    target: controlTarget(agent, () => opts.config),
    unavailable,
    timeoutMs: opts.config.commands.timeout,
    logger,
  });
  listen(agent, dispatcherFor(agent, opts.config, service, logger));
}

/**
 * Attach the control plane once the agent's store is open, retrying while it is unavailable
 * (commands need the journal: until then only ping, status and resync answer, see
 * `attachStoreless`).
 * Calls `onReady` with the control plane (the control socket uses it for `eclor-edge write`).
 */
export function attachWhenReady(
  agent: Agent,
  opts: ControlPlaneOptions,
  onReady?: (cp: ControlPlane) => void,
): () => void {
  const logger = opts.logger ?? agent.logger;
  let timer: NodeJS.Timeout | undefined;
  let cp: ControlPlane | undefined;
  let storeless = false;
  const tryAttach = (): void => {
    try {
      cp = ControlPlane.attach(agent, opts);
      logger.info("command router ready");
      onReady?.(cp);
    } catch (err) {
      logger.error(
        { err },
        "the command router cannot start (store unavailable): only ping, status and resync answer; retrying in 10 s",
      );
      if (!storeless) attachStoreless(agent, opts, logger.child({ component: "commands" }));
      storeless = true;
      timer = setTimeout(tryAttach, 10_000);
      timer.unref();
    }
  };
  tryAttach();
  return () => {
    clearTimeout(timer);
    cp?.close();
  };
}
