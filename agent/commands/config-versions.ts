/**
 * Configuration versions in SQLite, and the precedence between the local file and a
 * configuration received from the hypervisor (`config/set`):
 *
 *   A remote configuration stays in force across restarts as long as the local file is the one
 *   that was in force when it was applied (same SHA-256). When a technician edits the file, the
 *   file wins again at the next start (recorded as a new version by "local"). `eclor-edge config
 *   show` prints which one is in force and why.
 *
 * Every version keeps who (hypervisor | local), when, the command id and its status
 * (active | rolled_back | superseded). The stored config is the raw object (before `${ENV}` and
 * `file:` references are resolved), so secrets kept outside the file stay outside the database.
 */
import { createHash } from "node:crypto";
import type { Database } from "better-sqlite3";
import { migrateControlPlane } from "./db.js";
import type { Who } from "./journal.js";

export type VersionSource = "file" | "remote";
export type VersionStatus = "active" | "rolled_back" | "superseded";

export interface ConfigVersion {
  version: number;
  ts: number;
  who: Who;
  source: VersionSource;
  commandId: string | null;
  fileHash: string | null;
  config: Record<string, unknown>;
  status: VersionStatus;
  detail: string | null;
}

interface Row {
  version: number;
  ts: number;
  who: string;
  source: string;
  command_id: string | null;
  file_hash: string | null;
  config: string;
  status: string;
  detail: string | null;
}

const toVersion = (r: Row): ConfigVersion => ({
  version: r.version,
  ts: r.ts,
  who: r.who as Who,
  source: r.source as VersionSource,
  commandId: r.command_id,
  fileHash: r.file_hash,
  config: JSON.parse(r.config) as Record<string, unknown>,
  status: r.status as VersionStatus,
  detail: r.detail,
});

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export class ConfigVersions {
  /** `readOnly`: do not create the tables (for `eclor-edge config show` on a read-only handle). */
  constructor(
    private readonly db: Database,
    readOnly = false,
  ) {
    if (!readOnly) migrateControlPlane(db);
  }

  /** The version in force (the latest `active` one), if any. */
  active(): ConfigVersion | undefined {
    const r = this.db
      .prepare(
        "SELECT * FROM config_versions WHERE status = 'active' ORDER BY version DESC LIMIT 1",
      )
      .get() as Row | undefined;
    return r && toVersion(r);
  }

  list(limit = 20): ConfigVersion[] {
    return (
      this.db
        .prepare("SELECT * FROM config_versions ORDER BY version DESC LIMIT ?")
        .all(limit) as Row[]
    ).map(toVersion);
  }

  /** Record a new version; an `active` one supersedes the previous active version. */
  add(v: Omit<ConfigVersion, "version">): number {
    return this.db.transaction(() => {
      if (v.status === "active")
        this.db
          .prepare("UPDATE config_versions SET status = 'superseded' WHERE status = 'active'")
          .run();
      const r = this.db
        .prepare(
          "INSERT INTO config_versions (ts, who, source, command_id, file_hash, config, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(
          v.ts,
          v.who,
          v.source,
          v.commandId,
          v.fileHash,
          JSON.stringify(v.config),
          v.status,
          v.detail,
        );
      return Number(r.lastInsertRowid);
    })();
  }
}

export interface StartupChoice {
  source: VersionSource;
  /** Raw config object to validate and run. */
  raw: Record<string, unknown>;
  version: ConfigVersion;
  /** Why this source was chosen, in plain words (logged and shown by `config show`). */
  reason: string;
}

/**
 * Decide which configuration the agent starts with (the precedence rule above), recording the
 * file as a new version when it is the one in force and changed since the last record.
 */
export function chooseStartupConfig(
  versions: ConfigVersions,
  file: { raw: Record<string, unknown>; hash: string },
  now = Date.now(),
): StartupChoice {
  const active = versions.active();
  if (active?.source === "remote" && active.fileHash === file.hash) {
    return {
      source: "remote",
      raw: active.config,
      version: active,
      reason: `remote configuration v${active.version} (set by ${active.who} at ${new Date(active.ts).toISOString()}) is in force: the local file has not changed since it was applied`,
    };
  }
  if (active?.source === "file" && active.fileHash === file.hash) {
    return {
      source: "file",
      raw: file.raw,
      version: active,
      reason: "the local file is in force (no remote configuration was applied since)",
    };
  }
  const id = versions.add({
    ts: now,
    who: "local",
    source: "file",
    commandId: null,
    fileHash: file.hash,
    config: file.raw,
    status: "active",
    detail: null,
  });
  const version = versions.active()!;
  return {
    source: "file",
    raw: file.raw,
    version,
    reason:
      active?.source === "remote"
        ? `the local file changed since remote configuration v${active.version} was applied: the file wins (recorded as v${id})`
        : `the local file is in force (recorded as v${id})`,
  };
}
