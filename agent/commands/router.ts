/**
 * The command router: the only path from the hypervisor or the local CLI to a device write
 * (ARCHITECTURE.md invariant 4). Before anything reaches a driver:
 *   1. a repeated command id returns the journaled response and writes nothing (also after a
 *      restart; an id left pending by a crash is never executed again — at most once);
 *   2. the device and every point must exist and be `writable`, each value must have the point's
 *      type and lie within its min/max — one bad point refuses the whole command;
 *   3. a per-point token bucket limits the write rate;
 *   4. the id is journaled (committed) BEFORE the first driver call;
 * then the points are written in order, each with the rest of the command's time budget, with a
 * read-back when asked. Every attempt, accepted or refused, is audited.
 */
import { createHash, randomUUID } from "node:crypto";
import type {
  DeviceInfo,
  PointInfo,
  Value,
  WriteRequest,
  WriteResult,
} from "../../drivers/driver.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type { AuditLog, Outcome as AuditOutcome } from "./audit.js";
import { canonicalJson } from "../../config/canonical.js";
import type { Journal, Who } from "./journal.js";
import { type Outcome, errorBody, failure } from "./outcome.js";
import type { RateLimiter } from "./rate-limit.js";

/** What the router needs from the agent: the declared points and the drivers' write path. */
export interface WriteTarget {
  inventory(): readonly DeviceInfo[];
  /** Hand a validated write to the driver owning `request.device`. */
  write(request: WriteRequest): Promise<WriteResult>;
}

export interface WriteCommand {
  /** Command id (idempotency key). The local CLI may omit it: a fresh one is generated. */
  id?: string | undefined;
  device: string;
  /** Points to write, in order. */
  values: ReadonlyArray<{ point: string; value: Value }>;
  /** Read each point back after writing (default true; drivers that cannot say so). */
  verify?: boolean | undefined;
  /** Time budget of the whole command; capped by commands.timeout. */
  timeoutMs?: number | undefined;
  /** LoRaWAN: confirmed downlinks (refused for devices of other kinds). */
  confirmed?: boolean | undefined;
}

export interface PointWriteResult {
  point: string;
  value: Value;
  ok: boolean;
  queued?: boolean;
  read_back?: Value | null;
  detail?: string;
}

export interface WriteResultBody {
  device: string;
  results: PointWriteResult[];
}

export type WriteOutcome = Outcome<WriteResultBody> & { id: string; duplicate?: true };

export interface RouterOptions {
  target: WriteTarget;
  journal: Journal;
  audit: AuditLog;
  limiter: RateLimiter;
  /** commands.timeout (ms). */
  timeoutMs: number;
  now?: () => number;
}

export class CommandRouter {
  private readonly inflight = new Map<string, Promise<WriteOutcome>>();
  private readonly now: () => number;

  constructor(private readonly opts: RouterOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Validate and execute a write. Never throws: refusals and failures are outcomes. */
  async write(cmd: WriteCommand, who: Who): Promise<WriteOutcome> {
    const id = cmd.id ?? `${who}-${randomUUID()}`;
    try {
      return await this.writeOnce(id, cmd, who);
    } catch (e) {
      // Only a store failure (journal/audit) gets here: the write may not be attempted without
      // its journal entry, so it is reported and not retried.
      return { id, ...failure(e) };
    }
  }

  private async writeOnce(id: string, cmd: WriteCommand, who: Who): Promise<WriteOutcome> {
    const fingerprint = createHash("sha256")
      .update(
        canonicalJson({
          name: "write",
          device: cmd.device,
          values: cmd.values,
          ...(cmd.confirmed ? { confirmed: true } : {}),
        }),
      )
      .digest("hex");
    const running = this.inflight.get(id);
    if (running) return this.duplicateOf(id, fingerprint, cmd, who, await running);
    const seen = this.opts.journal.get(id);
    if (seen) {
      if (seen.state === "done")
        return this.duplicateOf(
          id,
          fingerprint,
          cmd,
          who,
          seen.response as WriteOutcome,
          seen.fingerprint,
        );
      const e = new EdgeError(
        ErrorCode.CommandFailed,
        `command ${id} was executing when the agent stopped; its outcome is unknown and it is not executed again — read the point to check, and send a new id to retry`,
        { id },
      );
      this.auditAll(cmd, id, who, "duplicate", e);
      return { id, duplicate: true, ...failure(e) };
    }

    let points: PointInfo[];
    try {
      points = this.validate(cmd);
      this.takeTokens(cmd);
    } catch (e) {
      this.auditAll(cmd, id, who, "refused", e);
      return { id, ...failure(e) };
    }

    if (!this.opts.journal.begin(id, "write", who, fingerprint, this.now())) {
      // Lost a race with a concurrent command of the same id in another process: never execute.
      const e = new EdgeError(ErrorCode.CommandInvalid, `command id ${id} is already in use`, {
        id,
      });
      return { id, ...failure(e) };
    }
    const run = this.execute(id, cmd, points, who);
    this.inflight.set(
      id,
      run.then((r) => r.outcome),
    );
    try {
      const { outcome, attempted } = await run;
      // A driver's refusal of the first value (it cannot represent it) reached no device: the id
      // is not consumed and the token is given back, like the router's own refusals.
      if (attempted) this.opts.journal.finish(id, outcome, this.now());
      else {
        this.opts.journal.forget(id);
        for (const { point } of cmd.values) this.opts.limiter.giveBack(`${cmd.device}/${point}`);
      }
      return outcome;
    } finally {
      this.inflight.delete(id);
    }
  }

  private duplicateOf(
    id: string,
    fingerprint: string,
    cmd: WriteCommand,
    who: Who,
    stored: WriteOutcome,
    storedFingerprint = fingerprint,
  ): WriteOutcome {
    if (storedFingerprint !== fingerprint) {
      const e = new EdgeError(
        ErrorCode.CommandInvalid,
        `command id ${id} was already used for a different write — use a new id for a new command`,
        { id },
      );
      this.auditAll(cmd, id, who, "refused", e);
      return { id, ...failure(e) };
    }
    this.auditAll(
      cmd,
      id,
      who,
      "duplicate",
      undefined,
      "repeated id: stored result returned, nothing written",
    );
    return { ...stored, id, duplicate: true };
  }

  /** The points of the command, checked against the allow-list; throws on the first problem set. */
  private validate(cmd: WriteCommand): PointInfo[] {
    const device = this.opts.target.inventory().find((d) => d.id === cmd.device);
    if (!device) {
      throw new EdgeError(ErrorCode.DeviceUnknown, `unknown device "${cmd.device}"`, {
        device: cmd.device,
      });
    }
    if (cmd.values.length === 0) {
      throw new EdgeError(
        ErrorCode.CommandInvalid,
        "nothing to write: give at least one point and value",
      );
    }
    if (cmd.confirmed && device.kind !== "lorawan")
      throw new EdgeError(
        ErrorCode.CommandInvalid,
        `"confirmed" applies to LoRaWAN downlinks only; device "${device.id}" is ${device.kind} — nothing was written`,
        { device: device.id },
      );
    const problems: { point: string; code: string; message: string }[] = [];
    const points: PointInfo[] = [];
    const seen = new Set<string>();
    for (const { point, value } of cmd.values) {
      const p = device.points.find((x) => x.id === point);
      const bad = (code: string, message: string) => problems.push({ point, code, message });
      if (seen.has(point)) bad("CommandInvalid", `point "${point}" appears twice in one command`);
      seen.add(point);
      if (!p) {
        bad("PointUnknown", `device "${device.id}" has no point "${point}"`);
        continue;
      }
      points.push(p);
      if (!p.writable) {
        bad(
          "CommandRefused",
          `point "${device.id}/${point}" is not writable (declare writable: true in the configuration to allow it)`,
        );
        continue;
      }
      const got = typeof value;
      if (got !== p.type || (got === "number" && !Number.isFinite(value))) {
        bad(
          "CommandInvalid",
          `point "${device.id}/${point}" takes a ${p.type}, got ${JSON.stringify(value)}`,
        );
        continue;
      }
      if (typeof value === "number") {
        if (p.min !== undefined && value < p.min)
          bad(
            "CommandRefused",
            `${value} is below the minimum ${p.min} of "${device.id}/${point}"`,
          );
        if (p.max !== undefined && value > p.max)
          bad(
            "CommandRefused",
            `${value} is above the maximum ${p.max} of "${device.id}/${point}"`,
          );
      }
    }
    if (problems.length > 0) {
      // One code for the command: the first problem's. All problems are in details.
      const first = problems[0]!;
      const code = ErrorCode[first.code as keyof typeof ErrorCode] ?? ErrorCode.CommandRefused;
      const text =
        problems.length === 1
          ? first.message
          : `${problems.length} problems: ${problems.map((p) => p.message).join("; ")}`;
      throw new EdgeError(code, `${text} — nothing was written`, { device: device.id, problems });
    }
    return points;
  }

  private takeTokens(cmd: WriteCommand): void {
    const waits = cmd.values.map(({ point }) => ({
      point,
      wait: this.opts.limiter.wait(`${cmd.device}/${point}`),
    }));
    const limited = waits.filter((w) => w.wait > 0);
    if (limited.length > 0) {
      const ms = Math.max(...limited.map((w) => w.wait));
      throw new EdgeError(
        ErrorCode.CommandRateLimited,
        `too many writes to ${limited.map((w) => `"${cmd.device}/${w.point}"`).join(", ")} — retry in ${Math.ceil(ms / 1000)} s (commands.rate_limit)`,
        { retry_after_ms: ms },
      );
    }
    for (const { point } of cmd.values) this.opts.limiter.take(`${cmd.device}/${point}`);
  }

  /** `attempted` is false when the driver refused the first value before the bus. */
  private async execute(
    id: string,
    cmd: WriteCommand,
    _points: PointInfo[],
    who: Who,
  ): Promise<{ outcome: WriteOutcome; attempted: boolean }> {
    const budget = Math.min(cmd.timeoutMs ?? this.opts.timeoutMs, this.opts.timeoutMs);
    const deadline = this.now() + budget;
    const results: PointWriteResult[] = [];
    for (const { point, value } of cmd.values) {
      const left = deadline - this.now();
      try {
        if (left <= 0)
          throw new EdgeError(
            ErrorCode.CommandTimeout,
            `no time left for "${cmd.device}/${point}" within ${budget} ms`,
          );
        const r = await withTimeout(
          this.opts.target.write({
            device: cmd.device,
            point,
            value,
            verify: cmd.verify ?? true,
            commandId: id,
            ...(cmd.confirmed ? { confirmed: true } : {}),
          }),
          left,
          () =>
            new EdgeError(
              ErrorCode.CommandTimeout,
              `the write to "${cmd.device}/${point}" did not finish within ${budget} ms; its outcome is unknown`,
              { device: cmd.device, point },
            ),
        );
        const res: PointWriteResult = {
          point,
          value,
          ok: r.ok,
          ...(r.queued ? { queued: true } : {}),
          ...(r.readBack !== undefined ? { read_back: r.readBack } : {}),
          ...(r.detail ? { detail: r.detail } : {}),
        };
        results.push(res);
        if (!r.ok)
          throw new EdgeError(
            ErrorCode.CommandFailed,
            `the device did not accept the write to "${cmd.device}/${point}"${r.detail ? `: ${r.detail}` : ""}`,
          );
        this.auditWrite(
          cmd,
          id,
          who,
          { point, value },
          "ok",
          undefined,
          r.queued ? "queued for delivery" : undefined,
        );
      } catch (e) {
        const err = errorBody(e);
        // Drivers refuse a value they cannot encode with CommandInvalid/CommandRefused, before
        // the bus (drivers/driver.ts `write`); on the first point nothing was written at all.
        const refusedFirst =
          results.length === 0 &&
          e instanceof EdgeError &&
          (e.code === ErrorCode.CommandInvalid || e.code === ErrorCode.CommandRefused);
        if (refusedFirst) {
          this.auditAll(cmd, id, who, "refused", e);
          return {
            attempted: false,
            outcome: {
              id,
              ok: false,
              error: { ...err, details: { ...err.details, device: cmd.device } },
            },
          };
        }
        if (!results.some((r) => r.point === point))
          results.push({ point, value, ok: false, detail: err.message });
        const outcome = err.code === "CommandTimeout" ? "timeout" : "failed";
        this.auditWrite(cmd, id, who, { point, value }, outcome, err.code, err.message);
        // Points after a failed one are not attempted: the command stops at the first failure.
        for (const rest of cmd.values.slice(results.length)) {
          results.push({ ...rest, ok: false, detail: "not attempted: an earlier point failed" });
          this.auditWrite(
            cmd,
            id,
            who,
            rest,
            "failed",
            "CommandFailed",
            "not attempted: an earlier point failed",
          );
        }
        return {
          attempted: true,
          outcome: {
            id,
            ok: false,
            error: { ...err, details: { ...err.details, device: cmd.device, results } },
          },
        };
      }
    }
    return { attempted: true, outcome: { id, ok: true, result: { device: cmd.device, results } } };
  }

  private auditAll(
    cmd: WriteCommand,
    id: string,
    who: Who,
    outcome: "refused" | "duplicate",
    e?: unknown,
    message?: string,
  ): void {
    const err = e === undefined ? undefined : errorBody(e);
    const values = cmd.values.length > 0 ? cmd.values : [{ point: undefined, value: undefined }];
    for (const pv of values)
      this.auditWrite(cmd, id, who, pv, outcome, err?.code, err?.message ?? message);
  }

  /** One audit row (and upstream event) per point of a write command. */
  private auditWrite(
    cmd: WriteCommand,
    id: string,
    who: Who,
    pv: { point: string | undefined; value: Value | undefined },
    outcome: AuditOutcome,
    code?: string,
    message?: string,
  ): void {
    this.opts.audit.record({
      ts: this.now(),
      who,
      commandId: id,
      command: "write",
      device: cmd.device,
      point: pv.point,
      value: pv.value,
      outcome,
      ...(code !== undefined ? { code } : {}),
      ...(message !== undefined ? { message } : {}),
    });
  }
}

/** Reject with `onTimeout()` if `p` has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}
