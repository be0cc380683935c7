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
import { queryHistory, replayPayloads } from "./history.js";
import { Journal } from "./journal.js";
import { RateLimiter } from "./rate-limit.js";
import { CommandRouter } from "./router.js";
import type { CommandResponse } from "./schemas.js";
import { type ControlTarget, CommandService } from "./service.js";
import { parsePublicKey } from "../../config/ed25519.js";
import { SignatureVerifier } from "./signing.js";

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
}

export class ControlPlane {
  readonly journal: Journal;
  readonly audit: AuditLog;
  readonly router: CommandRouter;
  readonly service: CommandService;
  readonly dispatcher: CommandDispatcher;
  readonly configManager: ConfigManager;
  readonly versions: ConfigVersions;
  private current: Config;
  private startFailures: { id: string; reason: string }[] = [];
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
    const signing = cfg.commands.signing;
    this.service = new CommandService({
      target: this.target(),
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
    });
    this.dispatcher = new CommandDispatcher({
      // The prefix in force: config/set may change it.
      prefix: () => agent.uplink.prefix,
      gatewayId: cfg.gateway.id,
      service: this.service,
      publisher: {
        publish: async (topic, payload, correlationData) => {
          const ok = await agent.uplink.publish(topic, payload, {
            qos: 1,
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

  /**
   * Attach to a started agent (its store must be open): registers the MQTT command handler.
   * Throws EdgeError(StoreUnavailable) when the store cannot be used — commands need the journal.
   */
  static attach(agent: Agent, opts: ControlPlaneOptions): ControlPlane {
    const cp = new ControlPlane(agent, opts);
    agent.onCommand("*", (m) =>
      cp.dispatcher.handle({
        topic: m.topic,
        payload: m.payload,
        responseTopic: m.responseTopic,
        correlationData: m.correlationData,
        retain: m.retain ?? false,
      }),
    );
    return cp;
  }

  /** Stop the control plane's timers (the agent stops the rest). */
  close(): void {
    clearInterval(this.pruneTimer);
  }

  /** The local control API's entry point: run a command as the local technician. */
  execute(name: string, body: Record<string, unknown>): Promise<CommandResponse> {
    return this.service.execute(name, body, { who: "local" });
  }

  /**
   * `eclor-edge write` through the control socket (agent/control/backend.ts): the router's checks,
   * journal and audit, as a local technician. Refusals and failures throw an EdgeError with the
   * router's code and words.
   */
  async localWrite(req: {
    device: string;
    point: string;
    value: Value;
    commandId: string;
    confirmed?: boolean;
  }): Promise<WriteResult & { commandId: string; duplicate?: boolean }> {
    const r = await this.router.write(
      {
        id: req.commandId,
        device: req.device,
        values: [{ point: req.point, value: req.value }],
        confirmed: req.confirmed,
      },
      "local",
    );
    if (!r.ok)
      throw new EdgeError(r.error.ecode as ErrorCodeValue, r.error.message, {
        ...r.error.details,
        command_id: r.id,
        ...(r.duplicate ? { duplicate: true } : {}),
      });
    const p = r.result.results[0]!;
    return {
      ok: p.ok,
      commandId: r.id,
      ...(p.queued ? { queued: true } : {}),
      ...(p.read_back !== undefined ? { readBack: p.read_back } : {}),
      ...(p.detail ? { detail: p.detail } : {}),
      ...(r.duplicate ? { duplicate: true } : {}),
    };
  }

  private target(): ControlTarget {
    const agent = this.agent;
    return {
      version: VERSION,
      // The agent's start time, as announced in its retained state message.
      startedAt: Date.parse(agent.uplink.statePayload(true).started_at),
      inventory: () => agent.inventory(),
      write: (r) => agent.write(r),
      read: (device, points) => agent.read(device, points),
      status: () => ({
        uplink: agent.uplink.status(),
        store: agent.store.stats(),
        drivers: agent.driverStatus(),
        config: this.configManager.get().version,
      }),
      history: (q) => queryHistory(agent.store.db, q),
      replay: async (from, to) => {
        agent.store.flush();
        const batches = replayPayloads(agent.store.db, from, to, this.current.uplink.batch_size);
        let count = 0;
        for (const b of batches) {
          const ok = await agent.uplink.publish(agent.uplink.topics.stream(b.stream), b.payload, {
            qos: 1,
          });
          if (!ok) {
            throw new EdgeError(
              ErrorCode.UplinkConnect,
              `replay interrupted after ${count} records: the uplink is not connected — repeat the replay`,
              { published: count },
            );
          }
          count += b.count;
        }
        return { from_seq: from, to_seq: to, count, missing: to - from + 1 - count };
      },
      resync: async () => {
        agent.uplink.resync();
        return [agent.uplink.topics.state, agent.uplink.topics.inventory];
      },
    };
  }

  private async apply(next: Config, plan: ApplyPlan): Promise<ApplyReport> {
    const r = await applyToAgent(this.agent, this.current, next, plan);
    this.startFailures = r.failures;
    this.current = next;
    return { reconfigured: r.reconfigured };
  }

  /**
   * A driver is healthy when it runs and, if it has devices, at least one of them answers: a bus
   * that cannot be opened (missing serial port, unreachable host) shows as every device offline,
   * since drivers do not fail `start()` for a device that is merely offline (drivers/driver.ts).
   */
  private health(): ReturnType<ConfigHost["health"]> {
    const failed = [...this.startFailures];
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

/**
 * Attach the control plane once the agent's store is open, retrying while it is unavailable
 * (commands need the journal: until then the uplink answers every command with an error).
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
  const tryAttach = (): void => {
    try {
      cp = ControlPlane.attach(agent, opts);
      logger.info("command router ready");
      onReady?.(cp);
    } catch (err) {
      logger.error(
        { err },
        "the command router cannot start (store unavailable): commands are refused; retrying in 10 s",
      );
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
