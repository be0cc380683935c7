/**
 * Secrets in configurations sent over MQTT (`config/get`) and stored as versions: literal values
 * of secret keys, and every literal value under the local file's `secrets:`, are replaced by
 * "[redacted]"; references (`${ENV}`, `file:`, `secret:NAME`) are shown, they are not secrets.
 * In `config/set`, a "[redacted]" value keeps the current value at the same path, so the
 * hypervisor can edit a configuration it got from `config/get` without ever knowing the secrets.
 */
import { SECRET_PREFIX, isSecretKey } from "../../config/remote-refs.js";

export const REDACTED = "[redacted]";
const isRef = (s: string) =>
  s.startsWith("file:") ||
  s.startsWith(SECRET_PREFIX) ||
  /^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$/.test(s);

export function redactSecrets(value: unknown, key = "", all = false): unknown {
  if (typeof value === "string")
    return (all || isSecretKey(key)) && !isRef(value) ? REDACTED : value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, key, all));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        // The top-level `secrets:` map: every value is a secret, whatever its name.
        redactSecrets(v, k, all || (key === "" && k === "secrets")),
      ]),
    );
  }
  return value;
}

/** Replace every "[redacted]" in `next` by the value at the same path in `current`. */
export function restoreRedacted(next: unknown, current: unknown): unknown {
  if (next === REDACTED) return typeof current === "string" ? current : next;
  if (Array.isArray(next)) {
    const cur: unknown[] = Array.isArray(current) ? current : [];
    // Lists of drivers/devices/points are matched by id, so a reordered list keeps each secret
    // with its owner; other lists by position.
    return next.map((v, i) => restoreRedacted(v, cur.find((c) => sameId(c, v)) ?? cur[i]));
  }
  if (next !== null && typeof next === "object") {
    const cur =
      current !== null && typeof current === "object" ? (current as Record<string, unknown>) : {};
    return Object.fromEntries(
      Object.entries(next).map(([k, v]) => [k, restoreRedacted(v, cur[k])]),
    );
  }
  return next;
}

function sameId(a: unknown, b: unknown): boolean {
  const id = (x: unknown) =>
    x !== null && typeof x === "object" ? (x as { id?: unknown }).id : undefined;
  return id(a) !== undefined && id(a) === id(b);
}
