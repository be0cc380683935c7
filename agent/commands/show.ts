/**
 * `eclor-edge config show`: which configuration the agent runs (or will run at its next start) —
 * the local file or the last remote one — why (the precedence rule of config-versions.ts), the
 * recent versions with who and when, and the effective configuration with secrets redacted.
 * Read-only: it opens the store file read-only and never creates it.
 */
import { stringify } from "yaml";
import { loadConfigFile } from "../../config/load.js";
import { redactSecrets } from "./redact.js";
import { resolveStartupConfig, storePathOf } from "./startup.js";

export interface ConfigShow {
  file: string;
  file_sha256: string;
  store: string;
  source: "file" | "remote";
  version: number | null;
  who: string | null;
  ts: string | null;
  reason: string;
  versions: {
    version: number;
    source: string;
    who: string;
    ts: string;
    status: string;
    command_id: string | null;
    detail: string | null;
  }[];
  config: unknown;
}

export function configShow(file: string): ConfigShow {
  const fileConfig = loadConfigFile(file);
  const s = resolveStartupConfig(file, fileConfig, { record: false });
  return {
    file,
    file_sha256: s.fileHash,
    store: storePathOf(fileConfig),
    source: s.source,
    version: s.version?.version ?? null,
    who: s.version?.who ?? null,
    ts: s.version ? new Date(s.version.ts).toISOString() : null,
    reason: s.reason,
    versions: (s.history ?? []).map((v) => ({
      version: v.version,
      source: v.source,
      who: v.who,
      ts: new Date(v.ts).toISOString(),
      status: v.status,
      command_id: v.commandId,
      detail: v.detail,
    })),
    config: redactSecrets(s.raw),
  };
}

export function formatConfigShow(s: ConfigShow): string {
  const lines = [
    `config file  ${s.file} (sha256 ${s.file_sha256.slice(0, 12)})`,
    `store        ${s.store}`,
    `in force     ${s.source === "remote" ? "remote configuration" : "local file"}${s.version !== null ? ` v${s.version}, by ${s.who} at ${s.ts}` : ""}`,
    `why          ${s.reason}`,
  ];
  if (s.versions.length > 0) {
    lines.push("versions (newest first):");
    for (const v of s.versions) {
      lines.push(
        `  v${v.version}  ${v.ts}  ${v.source.padEnd(6)}  ${v.who.padEnd(10)}  ${v.status}${v.command_id ? `  id ${v.command_id}` : ""}${v.detail ? `  (${v.detail})` : ""}`,
      );
    }
  }
  lines.push("effective configuration (secrets redacted):", "---", stringify(s.config).trimEnd());
  return `${lines.join("\n")}\n`;
}
