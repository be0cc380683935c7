/**
 * The audit trail: every write (and config change) that reached the router, accepted or
 * refused — when, who, what, outcome — in SQLite and, as an event, upstream to the hypervisor.
 */
import type { Database, Statement } from "better-sqlite3";
import type { DriverEvent, Value } from "../../drivers/driver.js";
import { migrateControlPlane } from "./db.js";
import type { Who } from "./journal.js";

export type Outcome = "ok" | "refused" | "failed" | "timeout" | "duplicate";

export interface AuditRecord {
  ts: number;
  who: Who;
  commandId?: string | undefined;
  command: string;
  device?: string | undefined;
  point?: string | undefined;
  value?: Value | undefined;
  outcome: Outcome;
  /** Error code name (EdgeError codeName) when the outcome is not ok. */
  code?: string | undefined;
  message?: string | undefined;
}

/** Where audit events go upstream (the agent queues them at top priority in the store). */
export type EventSink = (event: DriverEvent) => void;

interface Row {
  ts: number;
  who: string;
  command_id: string | null;
  command: string;
  device: string | null;
  point: string | null;
  value: string | null;
  outcome: string;
  code: string | null;
  message: string | null;
}

export class AuditLog {
  private readonly insert: Statement<
    [
      number,
      string,
      string | null,
      string,
      string | null,
      string | null,
      string | null,
      string,
      string | null,
      string | null,
    ]
  >;

  constructor(
    private readonly db: Database,
    private readonly sink?: EventSink,
  ) {
    migrateControlPlane(db);
    this.insert = db.prepare(
      "INSERT INTO cmd_audit (ts, who, command_id, command, device, point, value, outcome, code, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
  }

  record(r: AuditRecord): void {
    this.insert.run(
      r.ts,
      r.who,
      r.commandId ?? null,
      r.command,
      r.device ?? null,
      r.point ?? null,
      r.value === undefined ? null : JSON.stringify(r.value),
      r.outcome,
      r.code ?? null,
      r.message ?? null,
    );
    const what = r.device ? `${r.device}${r.point ? `/${r.point}` : ""}` : r.command;
    const by =
      r.who === "hypervisor"
        ? "the hypervisor"
        : r.who === "lighting"
          ? "the lighting module"
          : "a local technician";
    this.sink?.({
      ts: r.ts,
      type: "command_audit",
      severity: r.outcome === "ok" || r.outcome === "duplicate" ? "info" : "warning",
      ...(r.device ? { device: r.device } : {}),
      message: `${r.command} ${what}${r.value !== undefined ? ` = ${JSON.stringify(r.value)}` : ""} by ${by}: ${r.outcome}${r.message ? ` (${r.message})` : ""}`,
      data: {
        who: r.who,
        command: r.command,
        ...(r.commandId ? { command_id: r.commandId } : {}),
        ...(r.device ? { device: r.device } : {}),
        ...(r.point ? { point: r.point } : {}),
        ...(r.value !== undefined ? { value: r.value } : {}),
        outcome: r.outcome,
        ...(r.code ? { code: r.code } : {}),
      },
    });
  }

  /** Most recent first. */
  list(limit = 100): AuditRecord[] {
    const rows = this.db
      .prepare("SELECT * FROM cmd_audit ORDER BY rowid DESC LIMIT ?")
      .all(limit) as Row[];
    return rows.map((r) => ({
      ts: r.ts,
      who: r.who as Who,
      commandId: r.command_id ?? undefined,
      command: r.command,
      device: r.device ?? undefined,
      point: r.point ?? undefined,
      value: r.value === null ? undefined : (JSON.parse(r.value) as Value),
      outcome: r.outcome as Outcome,
      code: r.code ?? undefined,
      message: r.message ?? undefined,
    }));
  }
}
