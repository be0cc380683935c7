/**
 * The audit trail: every command that reached the gateway, accepted or refused — when, who, what,
 * outcome — in SQLite and, as an event, upstream to the hypervisor.
 *
 * Refusals are bounded (issue 14.3/14.6): a flood of refused commands must not turn into a flood
 * of fsyncs and upstream events. Per window of REFUSAL_WINDOW_MS, the first REFUSED_ROWS refusals
 * get a row each and the first REFUSED_EVENTS an event each; the rest are counted by
 * (who, command, code) and recorded as ONE aggregate row and ONE `commands_refused` event when
 * the window closes. Every refusal is therefore in the trail, individually or counted.
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

export const REFUSAL_WINDOW_MS = 10_000;
const REFUSED_ROWS = 100;
const REFUSED_EVENTS = 5;
/** Distinct (who, command, code) keys counted per window; the rest share one key. */
const MAX_KEYS = 32;

interface Window {
  start: number;
  rows: number;
  events: number;
  /** Refusals without a row / without an event of their own, by key. */
  unrecorded: Map<string, number>;
  unpublished: Map<string, number>;
  timer?: NodeJS.Timeout;
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

  private win: Window = {
    start: 0,
    rows: 0,
    events: 0,
    unrecorded: new Map(),
    unpublished: new Map(),
  };

  constructor(
    private readonly db: Database,
    private readonly sink?: EventSink,
    private readonly now: () => number = Date.now,
  ) {
    migrateControlPlane(db);
    this.insert = db.prepare(
      "INSERT INTO cmd_audit (ts, who, command_id, command, device, point, value, outcome, code, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
  }

  record(r: AuditRecord): void {
    if (r.outcome !== "refused") {
      this.insertRow(r);
      this.publish(r);
      return;
    }
    const t = this.now();
    if (t - this.win.start >= REFUSAL_WINDOW_MS) {
      this.flush();
      this.win.start = t;
    }
    const w = this.win;
    const key = `${r.who}|${r.command}|${r.code ?? ""}`;
    const count = (m: Map<string, number>) => {
      const k = m.has(key) || m.size < MAX_KEYS ? key : "(others)||";
      m.set(k, (m.get(k) ?? 0) + 1);
      // The summary goes out when the window closes, also if the flood stops.
      w.timer ??= setTimeout(() => this.flush(), REFUSAL_WINDOW_MS - (t - w.start));
      w.timer.unref?.();
    };
    if (w.rows < REFUSED_ROWS) {
      w.rows++;
      this.insertRow(r);
    } else count(w.unrecorded);
    if (w.events < REFUSED_EVENTS) {
      w.events++;
      this.publish(r);
    } else count(w.unpublished);
  }

  /** Record the counted refusals of the current window (aggregate row + event) and start anew. */
  flush(): void {
    const w = this.win;
    clearTimeout(w.timer);
    this.win = {
      start: this.now(),
      rows: 0,
      events: 0,
      unrecorded: new Map(),
      unpublished: new Map(),
    };
    const summary = (m: Map<string, number>) =>
      [...m].map(([k, n]) => {
        const [who, command, code] = k.split("|");
        return { who: who!, command: command!, ...(code ? { code } : {}), count: n };
      });
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const text = (m: Map<string, number>) =>
      summary(m)
        .map((x) => `${x.command}${x.code ? ` ${x.code}` : ""} by ${x.who} ×${x.count}`)
        .join("; ");
    const ts = this.now();
    if (w.unrecorded.size > 0)
      this.insertRow({
        ts,
        who: "aggregate",
        command: "(refused)",
        outcome: "refused",
        message: `${total(w.unrecorded)} more refused commands since ${new Date(w.start).toISOString()}, counted, not recorded one by one: ${text(w.unrecorded)}`,
      });
    if (w.unpublished.size > 0)
      this.sink?.({
        ts,
        type: "commands_refused",
        severity: "warning",
        message: `${total(w.unpublished)} more commands refused in ${Math.round((ts - w.start) / 1000)} s: ${text(w.unpublished)}`,
        data: { count: total(w.unpublished), since: w.start, by: summary(w.unpublished) },
      });
  }

  private insertRow(r: AuditRecord): void {
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
  }

  private publish(r: AuditRecord): void {
    const what = r.device ? `${r.device}${r.point ? `/${r.point}` : ""}` : r.command;
    const by =
      r.who === "hypervisor"
        ? "the hypervisor"
        : r.who === "lighting"
          ? "the lighting module"
          : r.who.startsWith("local")
            ? `a local technician${r.who.length > 5 ? ` (${r.who.slice(6)})` : ""}`
            : r.who;
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
