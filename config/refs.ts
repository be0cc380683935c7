/**
 * Secrets must not have to live in the config file. Two kinds of reference are resolved in every
 * string value of the LOCAL file before validation:
 *   - `${ENV_VAR}` or `${ENV_VAR:-default}` anywhere in a string (`$${` writes a literal `${`);
 *   - a whole value `file:/path/to/secret` (or `file:relative/to/config`) is replaced by the
 *     file's contents without the trailing newline (systemd credentials, Docker secrets).
 * A remote configuration (`config/set`, issue 14.1) is plain data: see remote-refs.ts.
 * The paths whose value came from a reference are collected in `sensitive`, so no error message
 * ever shows that value (issues.ts).
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { ConfigProblem } from "./issues.js";
import { formatPath } from "./issues.js";

export interface RefContext {
  env: Readonly<Record<string, string | undefined>>;
  /** Directory of the config file, for relative `file:` references. */
  baseDir: string;
  readFile?: (path: string) => string;
  /** Filled with the formatted paths whose value was expanded from a reference. */
  sensitive?: Set<string>;
}

/** Does `s` ask for expansion (a `file:` value or a `${NAME}` anywhere)? */
export function isReference(s: string): boolean {
  if (s.startsWith("file:")) return true;
  for (const m of s.matchAll(ENV_RE)) if (m[0] !== "$${") return true;
  return false;
}

const ENV_RE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function resolveRefs(
  value: unknown,
  ctx: RefContext,
  problems: ConfigProblem[],
  path: PropertyKey[] = [],
): unknown {
  if (typeof value === "string") return resolveString(value, ctx, problems, path);
  if (Array.isArray(value)) return value.map((v, i) => resolveRefs(v, ctx, problems, [...path, i]));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = resolveRefs(v, ctx, problems, [...path, k]);
    return out;
  }
  return value;
}

function resolveString(
  s: string,
  ctx: RefContext,
  problems: ConfigProblem[],
  path: PropertyKey[],
): string {
  if (isReference(s)) ctx.sensitive?.add(formatPath(path));
  if (s.startsWith("file:")) {
    const rel = s.slice(5);
    const file = isAbsolute(rel) ? rel : resolve(ctx.baseDir, rel);
    try {
      return (ctx.readFile ?? ((p) => readFileSync(p, "utf8")))(file).replace(/\r?\n$/, "");
    } catch (e) {
      const why =
        (e as NodeJS.ErrnoException).code === "ENOENT"
          ? "does not exist"
          : (e as NodeJS.ErrnoException).code === "EACCES"
            ? "is not readable by this user"
            : String((e as Error).message);
      problems.push({
        path: formatPath(path),
        message: `file reference ${file} ${why} — create it or fix the path`,
      });
      return s;
    }
  }
  return s.replace(ENV_RE, (whole, name: string | undefined, def: string | undefined) => {
    if (whole === "$${") return "${";
    const v = ctx.env[name!];
    if (v !== undefined && v !== "") return v;
    if (def !== undefined) return def;
    problems.push({
      path: formatPath(path),
      message: `environment variable ${name} is not set — export it (e.g. in the systemd unit's Environment= or an EnvironmentFile) or write \${${name}:-default}`,
    });
    return whole;
  });
}
