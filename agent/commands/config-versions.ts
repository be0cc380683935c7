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
 * `file:` references are resolved), so secrets kept outside the file stay outside the database,
 * with every literal secret redacted (issue 14.7); the literal secrets a remote configuration
 * carried are kept apart (column `secrets`) and put back only by `rawOf`, to restart from it.
 */
import { createHash } from "node:crypto";
import type { Database } from "better-sqlite3";
import { migrateControlPlane } from "./db.js";
import { REDACTED, redactSecrets } from "./redact.js";
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
  /** The configuration with its literal secrets redacted. */
  config: Record<string, unknown>;
  status: VersionStatus;
  detail: string | null;
  /** The literal secrets redacted from `config`, by path (see `rawOf`). */
  secrets?: [(string | number)[], string][];
}

/** The stored configuration with its secrets put back (to run it). */
export function rawOf(v: ConfigVersion): Record<string, unknown> {
  const out = structuredClone(v.config);
  for (const [path, value] of v.secrets ?? []) {
    let cur: Record<string | number, unknown> = out;
    for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
    cur[path[path.length - 1]!] = value;
  }
  return out;
}

/** Split a raw configuration into its redacted form and the literal secrets taken out of it. */
function splitSecrets(raw: Record<string, unknown>): {
  config: Record<string, unknown>;
  secrets: [(string | number)[], string][];
} {
  const config = redactSecrets(raw) as Record<string, unknown>;
  const secrets: [(string | number)[], string][] = [];
  const walk = (a: unknown, b: unknown, path: (string | number)[]): void => {
    if (b === REDACTED && typeof a === "string" && a !== REDACTED) secrets.push([path, a]);
    else if (Array.isArray(a) && Array.isArray(b)) a.forEach((v, i) => walk(v, b[i], [...path, i]));
    else if (a !== null && typeof a === "object" && b !== null && typeof b === "object")
      for (const [k, v] of Object.entries(a))
        walk(v, (b as Record<string, unknown>)[k], [...path, k]);
  };
  walk(raw, config, []);
  return { config, secrets };
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
  secrets?: string | null;
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
  ...(r.secrets ? { secrets: JSON.parse(r.secrets) as [(string | number)[], string][] } : {}),
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
  add(v: Omit<ConfigVersion, "version" | "secrets">): number {
    const { config, secrets } = splitSecrets(v.config);
    return this.db.transaction(() => {
      if (v.status === "active")
        this.db
          .prepare("UPDATE config_versions SET status = 'superseded' WHERE status = 'active'")
          .run();
      const r = this.db
        .prepare(
          "INSERT INTO config_versions (ts, who, source, command_id, file_hash, config, status, detail, secrets) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(
          v.ts,
          v.who,
          v.source,
          v.commandId,
          v.fileHash,
          JSON.stringify(config),
          v.status,
          v.detail,
          // A file version needs none: it restarts from the file itself.
          v.source === "remote" && secrets.length > 0 ? JSON.stringify(secrets) : null,
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
      raw: rawOf(active),
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
