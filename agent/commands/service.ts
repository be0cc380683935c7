/**
 * The command service: one entry point, `execute(name, body, origin)`, shared by the MQTT
 * dispatcher (origin hypervisor) and the local control API (origin local technician). It checks
 * the signature (MQTT only, when configured), validates the body against the wire schema, runs
 * the command and returns a response object — it never throws and never stays silent.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Reading } from "../../drivers/driver.js";
import type { StatusView } from "../health/schema.js";
import { formatIssues } from "../../config/issues.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type { AuditLog } from "./audit.js";
import type { ConfigGetResult, ConfigManager } from "./config-manager.js";
import { type Who, isLocal } from "./journal.js";
import { type Outcome, failure } from "./outcome.js";
import { type CommandRouter, type WriteTarget, withTimeout } from "./router.js";
import {
  COMMAND_NAMES,
  type CommandName,
  type CommandResponse,
  type RequestOf,
  type ResultOf,
  isCommandName,
  requestSchemas,
} from "./schemas.js";
import type { RateLimiter } from "./rate-limit.js";
import type { SignatureVerifier } from "./signing.js";
import type { LightingService } from "../lighting/service.js";

export interface HistoryQuery {
  device?: string | undefined;
  point?: string | undefined;
  from: number;
  to: number;
  limit: number;
  afterSeq?: number | undefined;
}

/** What the commands need from the agent (agent.ts implements it). */
export interface ControlTarget extends WriteTarget {
  readonly version: string;
  readonly startedAt: number;
  /** Read now through the driver, bypassing schedules and the deadband. */
  read(device: string, points?: readonly string[]): Promise<Reading[]>;
  /** The one status view (agent/health/view.ts). */
  status(): StatusView;
  history(q: HistoryQuery): ResultOf<"history">;
  /** Publish the stored records of the seq range again. */
  replay(fromSeq: number, toSeq: number): Promise<ResultOf<"replay">>;
  /** Publish state and inventory again; returns the topics published. */
  resync(): Promise<string[]>;
}

export interface Origin {
  who: Who;
}

export interface ServiceOptions {
  target: ControlTarget;
  /**
   * Absent while the store cannot be used (its journal holds the command ids): `ping`, `status`
   * and `resync` still answer, writes and configuration are refused with `unavailable`'s words.
   */
  router?: CommandRouter | undefined;
  unavailable?: () => EdgeError;
  config?: ConfigManager | undefined;
  /** Present when commands.signing is configured: hypervisor commands must be signed. */
  verifier?: SignatureVerifier | undefined;
  timeoutMs: number;
  logger: Logger;
  /** cmd/lighting/* (agent/lighting/service.ts); absent: those commands are refused. */
  lighting?: LightingService | undefined;
  /** Refusals thrown here (unknown command, schema, signature, unknown device…) are audited. */
  audit?: AuditLog | undefined;
  /** Per-device limit of `read` commands (commands.read_rate_limit). */
  readLimiter?: RateLimiter | undefined;
}

/** Codes of a command refused before it ran (the router and config manager audit their own). */
const REFUSALS = new Set<number>([
  ErrorCode.CommandUnknown,
  ErrorCode.CommandInvalid,
  ErrorCode.CommandRefused,
  ErrorCode.CommandRateLimited,
  ErrorCode.CommandSignature,
  ErrorCode.CommandBusy,
  ErrorCode.DeviceUnknown,
  ErrorCode.PointUnknown,
]);

export class CommandService {
  constructor(private readonly opts: ServiceOptions) {}

  async execute(name: string, body: unknown, origin: Origin): Promise<CommandResponse> {
    const obj =
      body !== null && typeof body === "object" && !Array.isArray(body)
        ? (body as Record<string, unknown>)
        : undefined;
    if (obj && isLocal(origin.who) && obj.id === undefined)
      body = { ...obj, id: `local-${randomUUID()}` };
    const rawId = (body as { id?: unknown } | undefined)?.id;
    const id = typeof rawId === "string" ? rawId : null;
    try {
      const outcome = await this.run(name, body, origin);
      return { id, ...outcome };
    } catch (e) {
      if (!(e instanceof EdgeError))
        this.opts.logger.error({ err: e, command: name }, "command failed unexpectedly");
      else if (REFUSALS.has(e.code)) this.auditRefusal(name, id, origin.who, e);
      return { id, ...failure(e) };
    }
  }

  /** Audit a command refused before it ran (issue 14.6): who, what, why; bounded by AuditLog. */
  auditRefusal(name: string, id: string | null, who: Who, e: EdgeError): void {
    const dev = e.details?.device;
    try {
      this.opts.audit?.record({
        ts: Date.now(),
        who,
        ...(id !== null ? { commandId: id.slice(0, 128) } : {}),
        // A name from the topic: bounded, it is input.
        command: name.slice(0, 64),
        ...(typeof dev === "string" ? { device: dev.slice(0, 128) } : {}),
        outcome: "refused",
        code: e.codeName,
        message: e.text.split("\n")[0]!.slice(0, 300),
      });
    } catch (err) {
      this.opts.logger.error({ err }, "could not audit a refused command");
    }
  }

  private async run(
    name: string,
    body: unknown,
    origin: Origin,
  ): Promise<Outcome & { duplicate?: true }> {
    if (!isCommandName(name)) {
      throw new EdgeError(
        ErrorCode.CommandUnknown,
        `unknown command "${name}" — known commands: ${COMMAND_NAMES.join(", ")}`,
        { command: name },
      );
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new EdgeError(
        ErrorCode.CommandInvalid,
        `expected a JSON object with at least an "id", got ${Array.isArray(body) ? "a list" : body === null ? "null" : typeof body}`,
      );
    }
    if (origin.who === "hypervisor" && this.opts.verifier)
      this.opts.verifier.check(name, body as Record<string, unknown>);
    const parsed = requestSchemas[name].safeParse(body, { reportInput: true });
    if (!parsed.success) {
      // Top-level keys for "did you mean" on a misspelt field.
      const keys = Object.keys(requestSchemas[name].shape);
      const problems = formatIssues(parsed.error.issues, (path) => (path.length === 0 ? keys : []));
      throw new EdgeError(
        ErrorCode.CommandInvalid,
        `invalid ${name} request: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`,
        { problems },
      );
    }
    return this.dispatch(name, parsed.data, origin);
  }

  private async dispatch(
    name: CommandName,
    req: RequestOf<CommandName>,
    origin: Origin,
  ): Promise<Outcome & { duplicate?: true }> {
    const t = this.opts.target;
    switch (name) {
      case "ping":
        return ok<"ping">({
          pong: true,
          ts: Date.now(),
          version: t.version,
          uptime_s: Math.round((Date.now() - t.startedAt) / 1000),
        });
      case "status":
        return ok<"status">(t.status());
      case "write": {
        const r = req as RequestOf<"write">;
        const values = r.values
          ? Object.entries(r.values).map(([point, value]) => ({ point, value }))
          : [{ point: r.point!, value: r.value! }];
        const { id: _id, ...outcome } = await this.router().write(
          {
            id: r.id,
            device: r.device,
            values,
            verify: r.verify,
            timeoutMs: r.timeout_ms,
            confirmed: r.confirmed,
          },
          origin.who,
        );
        return outcome;
      }
      case "read":
        return ok<"read">(await this.read(req as RequestOf<"read">));
      case "history": {
        const r = req as RequestOf<"history">;
        return ok<"history">(
          t.history({
            device: r.device,
            point: r.point,
            from: r.from,
            to: r.to,
            limit: r.limit,
            afterSeq: r.after_seq,
          }),
        );
      }
      case "replay": {
        const r = req as RequestOf<"replay">;
        return ok<"replay">(await t.replay(r.from_seq, r.to_seq));
      }
      case "resync":
        return ok<"resync">({ republished: await t.resync() });
      case "config/get":
        return ok<"config/get">(this.configManager().get() satisfies ConfigGetResult);
      case "config/set": {
        const r = req as RequestOf<"config/set">;
        return this.configManager().set(r.config, {
          who: origin.who,
          commandId: r.id,
          dryRun: r.dry_run ?? false,
        });
      }
      case "lighting/get":
        return ok<"lighting/get">(this.lighting().get(req));
      case "lighting/set":
        return this.lighting().set(req as RequestOf<"lighting/set">, origin.who);
      case "lighting/override":
        return this.lighting().override(req as RequestOf<"lighting/override">, origin.who);
      default: {
        const never: never = name;
        throw new EdgeError(ErrorCode.CommandUnknown, `unknown command "${String(never)}"`);
      }
    }
  }

  private router(): CommandRouter {
    if (this.opts.router) return this.opts.router;
    throw this.opts.unavailable?.() ?? new EdgeError(ErrorCode.StoreUnavailable, "no router");
  }

  private lighting(): LightingService {
    if (!this.opts.lighting)
      throw new EdgeError(ErrorCode.CommandRefused, "lighting is not available on this agent");
    return this.opts.lighting;
  }

  private configManager(): ConfigManager {
    if (!this.opts.config && this.opts.unavailable) throw this.opts.unavailable();
    if (!this.opts.config)
      throw new EdgeError(
        ErrorCode.CommandRefused,
        "remote configuration is not available on this agent",
      );
    return this.opts.config;
  }

  private async read(r: RequestOf<"read">): Promise<ResultOf<"read">> {
    const device = this.opts.target.inventory().find((d) => d.id === r.device);
    if (!device)
      throw new EdgeError(ErrorCode.DeviceUnknown, `unknown device "${r.device}"`, {
        device: r.device,
      });
    const unknown = (r.points ?? []).filter((p) => !device.points.some((x) => x.id === p));
    if (unknown.length > 0) {
      throw new EdgeError(
        ErrorCode.PointUnknown,
        `device "${r.device}" has no point ${unknown.map((p) => `"${p}"`).join(", ")}`,
        { device: r.device, points: unknown },
      );
    }
    // Reads are rate-limited as writes are (issue 14.3): each one goes to the bus at once.
    const lim = this.opts.readLimiter;
    const wait = lim?.take(`read:${r.device}`) ?? 0;
    if (wait > 0)
      throw new EdgeError(
        ErrorCode.CommandRateLimited,
        `too many reads of "${r.device}" — retry in ${Math.ceil(wait / 1000)} s (commands.read_rate_limit)`,
        { device: r.device, retry_after_ms: wait },
      );
    const ms = Math.min(r.timeout_ms ?? this.opts.timeoutMs, this.opts.timeoutMs);
    const readings = await withTimeout(
      this.opts.target.read(r.device, r.points),
      ms,
      () =>
        new EdgeError(
          ErrorCode.CommandTimeout,
          `reading "${r.device}" did not finish within ${ms} ms`,
        ),
    );
    return {
      device: r.device,
      readings: readings.map((x) => ({
        point: x.point,
        ts: x.ts,
        value: x.value,
        quality: x.quality,
        ...(x.unit !== undefined ? { unit: x.unit } : {}),
        ...(x.detail !== undefined ? { detail: x.detail } : {}),
      })),
    };
  }
}

function ok<N extends CommandName>(result: ResultOf<N>): Outcome<ResultOf<N>> {
  return { ok: true, result };
}
