/**
 * Which configuration the daemon starts with: the local file, or the remote configuration last
 * applied by `config/set` while that same file was in force (precedence rule in
 * config-versions.ts). Used by `eclor-edge run` and, read-only, by `eclor-edge config show`.
 */
import Database from "better-sqlite3";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import { parse } from "yaml";
import { validateRemoteConfig } from "../../config/load.js";
import type { Config } from "../../config/schema.js";
import { describeError } from "../../core/errors.js";
import { type Db, openDatabase } from "../store/db.js";
import {
  type ConfigVersion,
  ConfigVersions,
  chooseStartupConfig,
  rawOf,
  sha256,
} from "./config-versions.js";

export interface StartupConfig {
  config: Config;
  raw: Record<string, unknown>;
  fileHash: string;
  source: "file" | "remote";
  version?: ConfigVersion;
  reason: string;
  /** Latest versions, newest first (read-only mode only, for `config show`). */
  history?: ConfigVersion[];
}

export function storePathOf(config: Config): string {
  return config.store.path ?? join(config.state_dir, "store.db");
}

/**
 * `fileConfig` is the validated local file. With `record: false` (config show) nothing is
 * written; otherwise a changed file is recorded as a new version. Never throws: when the store
 * cannot be read or the remote configuration no longer validates, the file is used and the
 * reason says why.
 */
export function resolveStartupConfig(
  configPath: string,
  fileConfig: Config,
  opts: { record: boolean; logger?: Logger; env?: NodeJS.ProcessEnv },
): StartupConfig {
  const path = resolve(configPath);
  const text = readFileSync(path, "utf8");
  const raw = (parse(text) ?? {}) as Record<string, unknown>;
  const fileHash = sha256(text);
  const fromFile = (reason: string, version?: ConfigVersion): StartupConfig => ({
    config: fileConfig,
    raw,
    fileHash,
    source: "file",
    reason,
    ...(version ? { version } : {}),
  });
  let db: Db;
  const storePath = storePathOf(fileConfig);
  try {
    if (!opts.record && !existsSync(storePath)) {
      return fromFile(
        `the local file is in force (no store at ${storePath} yet: the agent has not run with this state_dir)`,
      );
    }
    db = opts.record
      ? openDatabase(storePath)
      : new Database(storePath, { readonly: true, fileMustExist: true });
  } catch (e) {
    return fromFile(`the local file is in force (the store cannot be read: ${describeError(e)})`);
  }
  try {
    const hasTable =
      db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'config_versions'").get() !== undefined;
    if (!opts.record && !hasTable)
      return fromFile("the local file is in force (no configuration version recorded yet)");
    const versions = new ConfigVersions(db, !opts.record);
    if (!opts.record) {
      const active = versions.active();
      const history = versions.list(10);
      if (active?.source === "remote" && active.fileHash === fileHash) {
        return {
          history,
          ...tryRemote(
            rawOf(active),
            active,
            `remote configuration v${active.version} (set by ${active.who} at ${new Date(active.ts).toISOString()}) is in force: the local file has not changed since it was applied`,
          ),
        };
      }
      return {
        history,
        ...fromFile(
          active?.source === "remote"
            ? `the local file changed since remote configuration v${active.version} was applied: the file wins at the next start`
            : "the local file is in force",
          active?.source === "file" && active.fileHash === fileHash ? active : undefined,
        ),
      };
    }
    const choice = chooseStartupConfig(versions, { raw, hash: fileHash });
    if (choice.source === "file") return fromFile(choice.reason, choice.version);
    return tryRemote(choice.raw, choice.version, choice.reason);
  } catch (e) {
    return fromFile(
      `the local file is in force (configuration versions unreadable: ${describeError(e)})`,
    );
  } finally {
    db.close();
  }

  function tryRemote(
    remoteRaw: Record<string, unknown>,
    version: ConfigVersion,
    reason: string,
  ): StartupConfig {
    try {
      // Plain data, as when it was set (issue 14.1): its references must still be the file's.
      const config = validateRemoteConfig(remoteRaw, `remote configuration v${version.version}`, {
        current: raw,
        secrets: fileConfig.secrets,
        local: { env: opts.env ?? process.env, baseDir: dirname(path) },
      });
      return { config, raw: remoteRaw, fileHash, source: "remote", version, reason };
    } catch (e) {
      opts.logger?.error(
        { err: e },
        `remote configuration v${version.version} no longer validates: starting with the local file`,
      );
      return fromFile(
        `remote configuration v${version.version} no longer validates here (${describeError(e).split("\n")[0]}): the local file is used`,
      );
    }
  }
}
