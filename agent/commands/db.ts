/**
 * Durable state of the control plane, in the store's SQLite database (the store is the only
 * durable state): the command journal (idempotency across restarts), the audit trail of every
 * write, the signing nonces already seen and the configuration versions.
 *
 * The tables are this component's migrations in the store's `schema_migrations` table (component
 * "commands", see agent/store/db.ts): append new steps, never edit a released one.
 */
import type { Database } from "better-sqlite3";
import { migrate } from "../store/db.js";

export const CONTROL_PLANE_DDL = `
CREATE TABLE cmd_journal (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  who         TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('pending', 'done')),
  response    TEXT,
  created_ts  INTEGER NOT NULL,
  done_ts     INTEGER
);
CREATE INDEX cmd_journal_created ON cmd_journal (created_ts);
CREATE TABLE cmd_audit (
  rowid      INTEGER PRIMARY KEY AUTOINCREMENT,
  ts         INTEGER NOT NULL,
  who        TEXT NOT NULL,
  command_id TEXT,
  command    TEXT NOT NULL,
  device     TEXT,
  point      TEXT,
  value      TEXT,
  outcome    TEXT NOT NULL,
  code       TEXT,
  message    TEXT
);
CREATE INDEX cmd_audit_ts ON cmd_audit (ts);
CREATE TABLE cmd_nonces (
  nonce TEXT PRIMARY KEY,
  ts    INTEGER NOT NULL
);
CREATE TABLE config_versions (
  version     INTEGER PRIMARY KEY AUTOINCREMENT,
  ts          INTEGER NOT NULL,
  who         TEXT NOT NULL,
  source      TEXT NOT NULL,
  command_id  TEXT,
  file_hash   TEXT,
  config      TEXT NOT NULL,
  status      TEXT NOT NULL,
  detail      TEXT
);
`;

/**
 * Step 2 (issue 14.7): `config` holds the version with its secrets redacted (what `config show`
 * and any reader of the table sees); the literal secrets a remote configuration carried (e.g. a
 * LoRaWAN AppKey for a device added remotely) are kept apart in `secrets`, so the version can
 * still be restarted from. The database file itself is 0600 (agent/store/db.ts).
 */
export const CONFIG_SECRETS_DDL = "ALTER TABLE config_versions ADD COLUMN secrets TEXT;";

const migrated = new WeakSet<Database>();

/** Idempotent and cheap after the first call on a handle. */
export function migrateControlPlane(db: Database): void {
  if (migrated.has(db)) return;
  migrate(db, "commands", [CONTROL_PLANE_DDL, CONFIG_SECRETS_DDL]);
  migrated.add(db);
}
