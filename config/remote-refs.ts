/**
 * A remote configuration (`config/set` from the hypervisor, or one stored by it) is plain data
 * (issue 14.1): it gets no `file:` or `${…}` expansion of its own — otherwise the hypervisor, or
 * anyone who can publish on its command topics, could read any file or environment variable of
 * the box and get it back in an error, the inventory or config/get. Two ways in remain, both
 * decided by the LOCAL file:
 *   - `secret:NAME` names a secret the local file exports under `secrets:` (whose value may itself
 *     be a `file:`/`${}` reference of the local file). It is accepted only in a secret field
 *     (password, token, keys…), which config/get, the inventory and stored versions redact, so a
 *     secret is used by name and never read back;
 *   - a reference repeated unchanged at the same path as in the configuration in force (what
 *     config/get shows) is the local file's own and is resolved as the file would be.
 * Anything else that looks like a reference is refused, without echoing it.
 */
import type { ConfigProblem } from "./issues.js";
import { formatPath } from "./issues.js";
import { type RefContext, isReference, resolveRefs } from "./refs.js";

export const SECRET_PREFIX = "secret:";
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Keys whose values are secrets: redacted in config/get and stored versions, hidden in errors. */
const SECRET_KEY =
  /(password|passphrase|secret|token|app_key|nwk_s_key|app_s_key|appskey|nwkskey|private_key)$/i;

export function isSecretKey(key: PropertyKey | undefined): boolean {
  return typeof key === "string" && SECRET_KEY.test(key);
}

export interface RemoteRefContext {
  /** The configuration in force, raw (references unresolved), as config/get shows it. */
  current: unknown;
  /** The secrets the local file exports, resolved (Config.secrets of the local file). */
  secrets: Readonly<Record<string, string>>;
  /** How the local file's own references are resolved. */
  local: RefContext;
}

export function resolveRemote(
  value: unknown,
  ctx: RemoteRefContext,
  problems: ConfigProblem[],
  sensitive: Set<string>,
  path: PropertyKey[] = [],
  current: unknown = ctx.current,
): unknown {
  if (typeof value === "string")
    return resolveString(value, ctx, problems, sensitive, path, current);
  if (Array.isArray(value)) {
    const cur: unknown[] = Array.isArray(current) ? current : [];
    return value.map((v, i) =>
      resolveRemote(
        v,
        ctx,
        problems,
        sensitive,
        [...path, i],
        cur.find((c) => sameId(c, v)) ?? cur[i],
      ),
    );
  }
  if (value !== null && typeof value === "object") {
    const cur =
      current !== null && typeof current === "object" ? (current as Record<string, unknown>) : {};
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = resolveRemote(v, ctx, problems, sensitive, [...path, k], cur[k]);
    return out;
  }
  return value;
}

function resolveString(
  s: string,
  ctx: RemoteRefContext,
  problems: ConfigProblem[],
  sensitive: Set<string>,
  path: PropertyKey[],
  current: unknown,
): string {
  const where = formatPath(path);
  if (s.startsWith(SECRET_PREFIX)) {
    sensitive.add(where);
    const name = s.slice(SECRET_PREFIX.length);
    if (!isSecretKey(path[path.length - 1])) {
      problems.push({
        path: where,
        message:
          "secret:NAME is accepted only in a secret field (password, token, app_key…), so the secret is never shown back",
      });
      return s;
    }
    const v = SECRET_NAME.test(name) ? ctx.secrets[name] : undefined;
    if (v === undefined) {
      const known = Object.keys(ctx.secrets);
      problems.push({
        path: where,
        message: `this gateway's local configuration exports no secret "${SECRET_NAME.test(name) ? name : "(invalid name)"}"${known.length ? ` (exported: ${known.join(", ")})` : ""} — declare it under secrets: in the gateway's file`,
      });
      return s;
    }
    return v;
  }
  if (!isReference(s)) return s;
  sensitive.add(where);
  if (s === current) {
    // The local file's reference, unchanged: resolved as the file itself is.
    const local: ConfigProblem[] = [];
    const out = resolveRefs(s, ctx.local, local, path) as string;
    // Its problem (a missing file, an unset variable) is the box's business: no path or name.
    if (local.length > 0)
      problems.push({
        path: where,
        message:
          "the local file's reference at this path cannot be resolved on the gateway — see its log or `eclor-edge config validate`",
      });
    return out;
  }
  problems.push({
    path: where,
    message:
      "file: and ${…} references are not expanded in a remote configuration (it is plain data) — send the value, or secret:NAME for a secret the gateway's local file exports under secrets:",
  });
  return s;
}

function sameId(a: unknown, b: unknown): boolean {
  const id = (x: unknown) =>
    x !== null && typeof x === "object" ? (x as { id?: unknown }).id : undefined;
  return id(a) !== undefined && id(a) === id(b);
}
