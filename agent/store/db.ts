/**
 * The SQLite database file: the agent's ONLY durable state (outbox, history, driver KV state, and
 * whatever other components register). One file, one better-sqlite3 connection, one thread.
 *
 * ## Durability decision (ARCHITECTURE.md invariant 1)
 * WAL journal with `synchronous=FULL`: every COMMIT fsyncs the WAL, so a committed transaction
 * survives `kill -9` AND a power cut. With `synchronous=NORMAL` a WAL commit survives a process
 * crash but may roll back on power loss — not good enough for readings. We pay the fsync once per
 * *group commit* (every `store.flush_ms`, default 200 ms, or `store.flush_count` readings), not
 * once per reading, so an SD card sees ≤ 5 fsyncs/s. A reading is "acknowledged by the store"
 * when the transaction that inserted it has committed — readings still in the group-commit buffer
 * (≤ flush_ms old) are not yet acknowledged and can be lost by a crash, by design.
 *
 * Bookkeeping that only causes *duplicates* when lost (the uplink's "sent up to seq" watermarks)
 * is committed with `synchronous=NORMAL` (see `withNormalSync`): it survives kill -9; a power cut
 * can only make in-flight-at-the-time batches be sent again, which the hypervisor drops by seq.
 *
 * ## Adding your own tables (control plane, CLI, provisioning…)
 * Do not touch PRAGMA user_version: it belongs to the core store schema (agent/store/schema.ts).
 * Each component registers its own numbered migrations, tracked per component in the
 * `schema_migrations` table (the same idea as user_version, namespaced):
 *
 *     import { migrate } from "../store/db.js";
 *     migrate(agent.store.db, "commands", [
 *       "CREATE TABLE command_journal (id TEXT PRIMARY KEY, …)",        // version 1
 *       (db) => db.exec("ALTER TABLE command_journal ADD COLUMN …"),    // version 2
 *     ]);
 *
 * Steps run in order, each in its own transaction with its version bump, exactly once per file.
 * Never edit or reorder a released step: append a new one. A file written by a newer agent
 * (more steps than this code knows) is refused with a clear error rather than misread.
 */
import Database from "better-sqlite3";
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { EdgeError, ErrorCode, describeError } from "../../core/errors.js";

export type Db = Database.Database;
export type Migration = string | ((db: Db) => void);

/** SQLite result codes that mean "this file is not a usable database" (not a transient state). */
const CORRUPT_CODES = new Set(["SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CORRUPT_VTAB"]);

/** Turn a SQLite/file-system error into a technician-readable EdgeError. */
export function storeError(path: string, e: unknown, doing: string): EdgeError {
  if (e instanceof EdgeError) return e;
  const code = (e as { code?: string }).code ?? "";
  if (CORRUPT_CODES.has(code)) {
    return new EdgeError(
      ErrorCode.StoreCorrupt,
      `store database ${path} is corrupt or not a SQLite file (${code}) while ${doing} — stop the agent, move the file aside (mv ${path} ${path}.corrupt) and start again; readings are kept in memory meanwhile`,
      { path, sqlite: code },
      { cause: e },
    );
  }
  const hint =
    code === "SQLITE_FULL"
      ? "the disk is full — free space on the state directory's file system"
      : code === "SQLITE_READONLY" || code === "EACCES" || code === "SQLITE_CANTOPEN"
        ? "the file or its directory is not writable by this user — check ownership and permissions of the state directory"
        : code === "SQLITE_IOERR" || code.startsWith("SQLITE_IOERR")
          ? "the storage reported an I/O error — check the SD card / disk (dmesg)"
          : "see the cause";
  return new EdgeError(
    ErrorCode.StoreUnavailable,
    `store database ${path} cannot be used (${code || describeError(e)}) while ${doing}: ${hint}; readings are kept in memory and the agent retries`,
    { path, sqlite: code },
    { cause: e },
  );
}

/**
 * State files are the agent's alone (issue 14.7): the store holds readings, the audit trail and
 * configuration versions. Created 0600 whatever the umask (the file is created here, before
 * SQLite opens it: SQLite gives its -wal/-shm files the database file's mode), and tightened if
 * an older agent left it wider; the directory 0750.
 */
export const STATE_FILE_MODE = 0o600;

function secureFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  closeSync(openSync(path, "a", STATE_FILE_MODE));
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if ((statSync(f).mode & 0o777) !== STATE_FILE_MODE) chmodSync(f, STATE_FILE_MODE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}

/** Open (creating if needed) the database file with the agent's pragmas. Throws EdgeError. */
export function openDatabase(path: string): Db {
  try {
    if (path !== ":memory:") secureFile(path);
    const db = new Database(path);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      // Other connections (the CLI reading history while the agent runs) wait instead of failing.
      db.pragma("busy_timeout = 5000");
      db.pragma("foreign_keys = ON");
      // Catch a truncated/garbage file now rather than at the first insert.
      const check = db.pragma("quick_check(1)", { simple: true });
      if (check !== "ok") {
        const err = new Error(`quick_check: ${String(check)}`) as Error & { code: string };
        err.code = "SQLITE_CORRUPT";
        throw err;
      }
    } catch (e) {
      db.close();
      throw e;
    }
    return db;
  } catch (e) {
    throw storeError(path, e, "opening it");
  }
}

const syncPragmas = new WeakMap<Db, { normal: Database.Statement; full: Database.Statement }>();

/** Run `fn` in a transaction committed with synchronous=NORMAL (see the header comment). */
export function withNormalSync<T>(db: Db, fn: () => T): T {
  // Prepared once per connection: this runs on every PUBACK.
  let p = syncPragmas.get(db);
  if (!p) {
    p = {
      normal: db.prepare("PRAGMA synchronous = NORMAL"),
      full: db.prepare("PRAGMA synchronous = FULL"),
    };
    syncPragmas.set(db, p);
  }
  p.normal.run();
  try {
    return db.transaction(fn)();
  } finally {
    p.full.run();
  }
}

/** Apply a component's migrations (see the header comment). Returns the resulting version. */
export function migrate(db: Db, component: string, steps: readonly Migration[]): number {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
  );
  const row = db
    .prepare("SELECT version FROM schema_migrations WHERE component = ?")
    .get(component) as { version: number } | undefined;
  const current = row?.version ?? 0;
  if (current > steps.length) {
    throw new EdgeError(
      ErrorCode.StoreCorrupt,
      `store schema of "${component}" is version ${current} but this agent knows only ${steps.length}: the file was written by a newer eclor-edge — upgrade the agent, do not downgrade over a newer store`,
      { component, version: current, known: steps.length },
    );
  }
  const bump = db.prepare(
    "INSERT INTO schema_migrations (component, version) VALUES (?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version",
  );
  for (let v = current; v < steps.length; v++) {
    const step = steps[v]!;
    db.transaction(() => {
      if (typeof step === "string") db.exec(step);
      else step(db);
      bump.run(component, v + 1);
    })();
  }
  return steps.length;
}

/** The core store schema uses PRAGMA user_version (same rules as `migrate`). */
export function migrateUserVersion(db: Db, steps: readonly Migration[]): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > steps.length) {
    throw new EdgeError(
      ErrorCode.StoreCorrupt,
      `store schema is version ${current} but this agent knows only ${steps.length}: the file was written by a newer eclor-edge — upgrade the agent`,
      { version: current, known: steps.length },
    );
  }
  for (let v = current; v < steps.length; v++) {
    const step = steps[v]!;
    db.transaction(() => {
      if (typeof step === "string") db.exec(step);
      else step(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return steps.length;
}

/**
 * Take the state directory for this process (issue 14.7): a second agent on the same directory
 * would poll the same buses, share one store and fight for the broker's client id. Node has no
 * flock(2); an O_EXCL lock file holding the pid is the portable equivalent. A lock whose pid is
 * gone (kill -9, power cut) or is no longer an eclor-edge process (pid reused after a reboot) is
 * stale and taken over. Returns the release function (also run at process exit).
 */
export function lockStateDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const path = join(dir, "agent.lock");
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, "wx", STATE_FILE_MODE);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      const release = (): void => {
        try {
          if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // Already gone: nothing to release.
        }
      };
      process.once("exit", release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0)
        throw new EdgeError(
          ErrorCode.StoreUnavailable,
          `cannot lock the state directory ${dir} (${describeError(e)}) — check its ownership and permissions`,
          { path },
        );
      let pid = 0;
      try {
        pid = Number(readFileSync(path, "utf8").trim());
      } catch {
        // Unreadable or vanished: treated as stale below.
      }
      if (pid > 0 && pid !== process.pid && isAgent(pid))
        throw new EdgeError(
          ErrorCode.StoreUnavailable,
          `another eclor-edge agent (pid ${pid}) is running on the state directory ${dir} — stop it first (systemctl stop eclor-edge), or give this one its own state_dir`,
          { path, pid },
        );
      try {
        unlinkSync(path); // stale
      } catch {
        // Someone else removed it: retry once.
      }
    }
  }
}

function isAgent(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return /eclor-edge|agent\/main\.js/.test(cmd);
  } catch {
    return true; // alive but not inspectable: do not take its lock
  }
}
