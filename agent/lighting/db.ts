/**
 * The lighting module's durable state, in the store's SQLite database (the store is the only
 * durable state): configuration versions set from the hypervisor, overrides, and the per-group
 * state (last level written, energy of the night). Migrations of component "lighting" in the
 * store's `schema_migrations` (agent/store/db.ts): append new steps, never edit a released one.
 */
import type { Database } from "better-sqlite3";
import { migrate } from "../store/db.js";
import type { Override } from "./arbiter.js";

export const LIGHTING_DDL = `
CREATE TABLE lighting_versions (
  version    INTEGER PRIMARY KEY AUTOINCREMENT,
  ts         INTEGER NOT NULL,
  who        TEXT NOT NULL,
  command_id TEXT,
  base_hash  TEXT NOT NULL,
  config     TEXT NOT NULL,
  status     TEXT NOT NULL,
  detail     TEXT
);
CREATE TABLE lighting_overrides (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  grp        TEXT NOT NULL,
  level      INTEGER NOT NULL,
  start_ts   INTEGER NOT NULL,
  expires_ts INTEGER,
  until_next INTEGER NOT NULL,
  who        TEXT NOT NULL,
  command_id TEXT,
  reason     TEXT,
  ended_ts   INTEGER,
  end_reason TEXT
);
CREATE INDEX lighting_overrides_open ON lighting_overrides (grp, ended_ts);
CREATE TABLE lighting_state (
  grp       TEXT PRIMARY KEY,
  level     INTEGER,
  source    TEXT,
  reason    TEXT,
  ts        INTEGER,
  night     TEXT,
  burn_ms   REAL NOT NULL DEFAULT 0,
  energy_wh REAL NOT NULL DEFAULT 0,
  full_wh   REAL NOT NULL DEFAULT 0
);
`;

export interface LightingVersion {
  version: number;
  ts: number;
  who: string;
  commandId: string | null;
  baseHash: string;
  config: Record<string, unknown>;
  status: "active" | "rolled_back" | "superseded";
  detail: string | null;
}

export interface GroupState {
  level: number | null;
  source: string | null;
  reason: string | null;
  ts: number | null;
  night: string | null;
  burnMs: number;
  energyWh: number;
  fullWh: number;
}

interface OverrideRow {
  id: number;
  grp: string;
  level: number;
  start_ts: number;
  expires_ts: number | null;
  until_next: number;
  who: string;
  command_id: string | null;
  reason: string | null;
}

export class LightingDb {
  constructor(
    private readonly db: Database,
    now = Date.now(),
  ) {
    migrate(db, "lighting", [LIGHTING_DDL]);
    // Bounded history: ended overrides are kept 90 days, the last 100 versions (the active one
    // always).
    db.prepare("DELETE FROM lighting_overrides WHERE ended_ts IS NOT NULL AND ended_ts < ?").run(
      now - 90 * 86_400_000,
    );
    db.prepare(
      "DELETE FROM lighting_versions WHERE status != 'active' AND version <= (SELECT max(version) FROM lighting_versions) - 100",
    ).run();
  }

  activeVersion(): LightingVersion | undefined {
    const r = this.db
      .prepare(
        "SELECT * FROM lighting_versions WHERE status = 'active' ORDER BY version DESC LIMIT 1",
      )
      .get() as Record<string, unknown> | undefined;
    if (!r) return undefined;
    return {
      version: r.version as number,
      ts: r.ts as number,
      who: r.who as string,
      commandId: (r.command_id as string | null) ?? null,
      baseHash: r.base_hash as string,
      config: JSON.parse(r.config as string) as Record<string, unknown>,
      status: r.status as LightingVersion["status"],
      detail: (r.detail as string | null) ?? null,
    };
  }

  addVersion(v: Omit<LightingVersion, "version">): number {
    return this.db.transaction(() => {
      if (v.status === "active")
        this.db
          .prepare("UPDATE lighting_versions SET status = 'superseded' WHERE status = 'active'")
          .run();
      return Number(
        this.db
          .prepare(
            "INSERT INTO lighting_versions (ts, who, command_id, base_hash, config, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
          )
          .run(v.ts, v.who, v.commandId, v.baseHash, JSON.stringify(v.config), v.status, v.detail)
          .lastInsertRowid,
      );
    })();
  }

  /** Open overrides, the last one per group (the last received wins). */
  openOverrides(): Map<string, Override> {
    const rows = this.db
      .prepare("SELECT * FROM lighting_overrides WHERE ended_ts IS NULL ORDER BY id")
      .all() as OverrideRow[];
    const out = new Map<string, Override>();
    for (const r of rows)
      out.set(r.grp, {
        id: r.id,
        group: r.grp,
        level: r.level,
        start: r.start_ts,
        expires: r.expires_ts,
        untilNextEvent: r.until_next === 1,
        who: r.who,
        commandId: r.command_id,
        reason: r.reason,
      });
    return out;
  }

  /** Record an override; the group's previous open one ends (superseded) in the same transaction. */
  startOverride(o: Omit<Override, "id">): Override {
    return this.db.transaction(() => {
      this.endOverrides(o.group, o.start, "superseded by a newer override");
      const id = Number(
        this.db
          .prepare(
            "INSERT INTO lighting_overrides (grp, level, start_ts, expires_ts, until_next, who, command_id, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          )
          .run(
            o.group,
            o.level,
            o.start,
            o.expires,
            o.untilNextEvent ? 1 : 0,
            o.who,
            o.commandId,
            o.reason,
          ).lastInsertRowid,
      );
      return { ...o, id };
    })();
  }

  endOverrides(group: string, ts: number, reason: string): number {
    return this.db
      .prepare(
        "UPDATE lighting_overrides SET ended_ts = ?, end_reason = ? WHERE grp = ? AND ended_ts IS NULL",
      )
      .run(ts, reason, group).changes;
  }

  state(group: string): GroupState | undefined {
    const r = this.db.prepare("SELECT * FROM lighting_state WHERE grp = ?").get(group) as
      Record<string, unknown> | undefined;
    if (!r) return undefined;
    return {
      level: (r.level as number | null) ?? null,
      source: (r.source as string | null) ?? null,
      reason: (r.reason as string | null) ?? null,
      ts: (r.ts as number | null) ?? null,
      night: (r.night as string | null) ?? null,
      burnMs: r.burn_ms as number,
      energyWh: r.energy_wh as number,
      fullWh: r.full_wh as number,
    };
  }

  saveState(group: string, s: GroupState): void {
    this.db
      .prepare(
        `INSERT INTO lighting_state (grp, level, source, reason, ts, night, burn_ms, energy_wh, full_wh)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (grp) DO UPDATE SET level = excluded.level, source = excluded.source,
           reason = excluded.reason, ts = excluded.ts, night = excluded.night,
           burn_ms = excluded.burn_ms, energy_wh = excluded.energy_wh, full_wh = excluded.full_wh`,
      )
      .run(group, s.level, s.source, s.reason, s.ts, s.night, s.burnMs, s.energyWh, s.fullWh);
  }
}
