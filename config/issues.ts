/**
 * Turns zod issues into lines a technician can act on:
 * `drivers[0].devices[2].points[0].address: expected integer 0..65535 (…), got "4x0001"`.
 * Every issue is reported, not only the first (model: Ajv allErrors, zigbee2mqtt settings.ts).
 */
import type { z } from "zod";

export interface ConfigProblem {
  /** `drivers[0].devices[2].points[0].address`, or `(root)`. */
  path: string;
  message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out || "(root)";
}

/** Longest input shown in a message; longer ones are cut (a pasted key, a whole file). */
const MAX_SHOWN = 48;

function describeInput(input: unknown, hidden = false): string {
  if (input === undefined) return "nothing";
  if (input === null) return "null";
  // A value from a reference or a secret field is never echoed (issue 14.1): its type only.
  if (hidden)
    return `a ${typeof input === "object" ? "value" : typeof input} (not shown: secret or reference)`;
  if (typeof input === "string")
    return input.length > MAX_SHOWN
      ? `${JSON.stringify(input.slice(0, MAX_SHOWN))}… (${input.length} characters)`
      : JSON.stringify(input);
  if (typeof input === "number" || typeof input === "boolean") return String(input);
  if (Array.isArray(input)) return "a list";
  return "an object";
}

/** Levenshtein distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of allowed) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** Keys a strict object at `path` accepts, found by walking the schema (for suggestions). */
export type AllowedKeys = (path: readonly PropertyKey[]) => readonly string[];

/** True for a path whose value must not be shown (it came from a reference, or is a secret). */
export type HiddenInput = (path: readonly PropertyKey[]) => boolean;

export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  allowedKeys?: AllowedKeys,
  hidden: HiddenInput = () => false,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      const allowed = allowedKeys?.(issue.path) ?? [];
      for (const key of issue.keys) {
        const hint = closest(key, allowed);
        out.push({
          path: formatPath([...issue.path, key]),
          message: `unknown key${hint ? ` — did you mean "${hint}"?` : allowed.length ? ` (allowed here: ${allowed.join(", ")})` : ""}`,
        });
      }
      continue;
    }
    if (issue.code === "invalid_union" && "discriminator" in issue && "options" in issue) {
      // zod 4 reports a discriminated union without a matching option this way; the path
      // already ends with the discriminator key and `input` is the whole object.
      const key = String(issue.discriminator);
      const input = (issue as { input?: unknown }).input;
      const got =
        input && typeof input === "object" ? (input as Record<string, unknown>)[key] : input;
      out.push({
        path: formatPath(issue.path),
        message: `expected one of ${(issue.options as unknown[]).map(String).join(", ")}, got ${describeInput(got, hidden(issue.path))}`,
      });
      continue;
    }
    let message = issue.message;
    const input = (issue as { input?: unknown }).input;
    if (issue.code === "invalid_type" && input === undefined) {
      message = `missing: ${message.replace(/^Invalid input: /, "")}`;
    } else if (!/\bgot\b/.test(message) && issue.code !== "custom") {
      message = `${message.replace(/^Invalid input: /, "")}, got ${describeInput(input, hidden(issue.path))}`;
    }
    out.push({ path: formatPath(issue.path), message });
  }
  return out;
}
