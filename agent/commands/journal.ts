/**
 * The command journal: a command id is recorded (state `pending`) before anything is executed,
 * and its response is stored when it ends (`done`). A repeated id returns the stored response and
 * executes nothing — also after a restart. An id left `pending` by a crash is never re-executed
 * (at most once): the repeat gets an error saying the outcome is unknown.
 */
import type { Database, Statement } from "better-sqlite3";
import { migrateControlPlane } from "./db.js";

/**
 * Who sent a command: the hypervisor (MQTT), a local technician (`local`, or `local:uid=1000`
 * with the control socket's peer credentials, issue 14.6), the lighting module (agent/lighting),
 * or `aggregate` for the audit's counted refusals.
 */
export type Who = "hypervisor" | "local" | `local:${string}` | "lighting" | "aggregate";

export const isLocal = (who: Who): boolean => who === "local" || who.startsWith("local:");

export type JournalEntry =
  | { state: "pending"; name: string; who: Who; fingerprint: string; createdTs: number }
  | {
      state: "done";
      name: string;
      who: Who;
      fingerprint: string;
      createdTs: number;
      response: unknown;
    };

interface Row {
  name: string;
  who: string;
  fingerprint: string;
  state: "pending" | "done";
  response: string | null;
  created_ts: number;
}

export class Journal {
  private readonly getStmt: Statement<[string], Row>;
  private readonly insertStmt: Statement<[string, string, string, string, number]>;
  private readonly doneStmt: Statement<[string, number, string]>;
  private readonly pruneStmt: Statement<[number]>;

  constructor(private readonly db: Database) {
    migrateControlPlane(db);
    this.getStmt = db.prepare(
      "SELECT name, who, fingerprint, state, response, created_ts FROM cmd_journal WHERE id = ?",
    );
    this.insertStmt = db.prepare(
      "INSERT INTO cmd_journal (id, name, who, fingerprint, state, created_ts) VALUES (?, ?, ?, ?, 'pending', ?)",
    );
    this.doneStmt = db.prepare(
      "UPDATE cmd_journal SET state = 'done', response = ?, done_ts = ? WHERE id = ?",
    );
    this.pruneStmt = db.prepare("DELETE FROM cmd_journal WHERE created_ts < ?");
  }

  get(id: string): JournalEntry | undefined {
    const r = this.getStmt.get(id);
    if (!r) return undefined;
    const base = {
      name: r.name,
      who: r.who as Who,
      fingerprint: r.fingerprint,
      createdTs: r.created_ts,
    };
    if (r.state === "pending") return { ...base, state: "pending" };
    return { ...base, state: "done", response: JSON.parse(r.response ?? "null") as unknown };
  }

  /**
   * Record `id` as pending. Returns false when the id is already journaled (the caller must then
   * not execute). The insert is committed before this returns (better-sqlite3 is synchronous).
   */
  begin(id: string, name: string, who: Who, fingerprint: string, now = Date.now()): boolean {
    try {
      this.insertStmt.run(id, name, who, fingerprint, now);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") return false;
      throw e;
    }
  }

  finish(id: string, response: unknown, now = Date.now()): void {
    this.doneStmt.run(JSON.stringify(response), now, id);
  }

  /**
   * Drop a pending id whose command never reached a device (a driver refused the value before
   * the bus): it is not consumed, a corrected resend with the same id runs (issue 14.5).
   */
  forget(id: string): void {
    this.db.prepare("DELETE FROM cmd_journal WHERE id = ? AND state = 'pending'").run(id);
  }

  /** Forget ids older than `maxAgeMs` (commands.journal_days). */
  prune(maxAgeMs: number, now = Date.now()): number {
    return this.pruneStmt.run(now - maxAgeMs).changes;
  }
}
