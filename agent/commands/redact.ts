/**
 * Secrets in configurations sent over MQTT (`config/get`): literal values of secret keys are
 * replaced by "[redacted]"; references (`${ENV}`, `file:`) are shown, they are not secrets.
 * In `config/set`, a "[redacted]" value keeps the current value at the same path, so the
 * hypervisor can edit a configuration it got from `config/get` without ever knowing the secrets.
 */
export const REDACTED = "[redacted]";
const SECRET_KEY =
  /(password|passphrase|secret|token|app_key|nwk_s_key|app_s_key|appskey|nwkskey|private_key)$/i;
const isRef = (s: string) =>
  s.startsWith("file:") || /^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$/.test(s);

export function redactSecrets(value: unknown, key = ""): unknown {
  if (typeof value === "string") return SECRET_KEY.test(key) && !isRef(value) ? REDACTED : value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, key));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactSecrets(v, k)]));
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
