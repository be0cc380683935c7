/**
 * Canonical JSON (RFC 8785 JCS for the values commands carry: objects with keys sorted by UTF-16
 * code units, ECMAScript number and string serialisation, no whitespace). Used for the signing
 * input and for command fingerprints; ten lines do not justify a dependency.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    // JSON.stringify of a primitive already follows JCS (RFC 8785 §3.2.2); NaN/Infinity, which JSON
    // cannot carry, become null as in JSON.stringify (they are refused by validation anyway).
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}
