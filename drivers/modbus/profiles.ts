/**
 * Device profiles: a point map written once (drivers/modbus/profiles/<name>.yaml) and reused by
 * every device that names it. Read synchronously because zod runs the device transform during
 * config validation; a profile is a few kB and read once per validation.
 *
 * The shipped profiles live in the source tree (drivers/modbus/profiles/, shipped in the npm
 * package through package.json "files"); compiled code runs from dist/drivers/modbus/, so both
 * locations are tried.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { formatIssues } from "../../config/issues.js";
import {
  type ModbusPointConfig,
  modbusPointSchema,
  type ProfileFile,
  profileFileSchema,
} from "./point-schema.js";

const candidates = [
  new URL("./profiles/", import.meta.url), // running from source (vitest, tsx)
  new URL("../../../drivers/modbus/profiles/", import.meta.url), // running from dist/
];

/** Directory of the shipped profiles. */
export function profilesDir(): string {
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  return fileURLToPath(candidates[0]!);
}

export function profilePath(name: string): string | undefined {
  if (isAbsolute(name)) return name;
  // A shipped name is one safe segment: no path tricks reaching outside the profiles directory.
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(name) || name.includes("..")) return undefined;
  return `${profilesDir()}${name}.yaml`;
}

export type ProfileResult =
  | { ok: true; path: string; profile: ProfileFile; points: ModbusPointConfig[] }
  | { ok: false; problems: string[] };

export function loadProfile(
  name: string,
  counts: Readonly<Record<string, number>> = {},
): ProfileResult {
  const path = profilePath(name);
  if (!path)
    return {
      ok: false,
      problems: [
        `"${name}" is not a profile name (lower-case letters, digits, - _ .) nor an absolute path to a YAML file`,
      ],
    };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      ok: false,
      problems: [
        `profile ${path} ${code === "ENOENT" ? `does not exist — shipped profiles: ${listProfiles().join(", ") || "none"}` : `cannot be read (${code ?? String(e)})`}`,
      ],
    };
  }
  let raw: unknown;
  try {
    raw = parse(text, { uniqueKeys: true });
  } catch (e) {
    return {
      ok: false,
      problems: [`profile ${path}: YAML error: ${(e as Error).message.split("\n")[0]}`],
    };
  }
  const parsed = profileFileSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!parsed.success)
    return {
      ok: false,
      problems: formatIssues(parsed.error.issues).map(
        (p) => `profile ${path}: ${p.path}: ${p.message}`,
      ),
    };
  const profile = parsed.data;
  const problems: string[] = [];
  const points = [...profile.points];
  for (const [ai, arr] of profile.arrays.entries()) {
    const count = counts[arr.name] ?? arr.count;
    if (count > arr.count)
      problems.push(
        `profile ${path}: array ${arr.name} has ${arr.count} instances, ${count} requested`,
      );
    for (let n = 0; n < Math.min(count, arr.count); n++) {
      for (const [pi, tmpl] of arr.points.entries()) {
        const inst = JSON.parse(JSON.stringify(tmpl).replaceAll("{n}", String(n))) as Record<
          string,
          unknown
        >;
        if (typeof inst.address === "number") inst.address += n * arr.stride;
        const r = modbusPointSchema.safeParse(inst, { reportInput: true });
        if (!r.success) {
          for (const p of formatIssues(r.error.issues))
            problems.push(
              `profile ${path}: arrays[${ai}].points[${pi}] (n=${n}).${p.path}: ${p.message}`,
            );
        } else points.push(r.data);
        if (problems.length > 20) return { ok: false, problems };
      }
    }
  }
  for (const k of Object.keys(counts))
    if (!profile.arrays.some((a) => a.name === k))
      problems.push(
        `profile ${path} has no array "${k}" (arrays: ${profile.arrays.map((a) => a.name).join(", ") || "none"})`,
      );
  const seen = new Set<string>();
  for (const p of points) {
    if (seen.has(p.id)) problems.push(`profile ${path}: duplicate point id "${p.id}"`);
    seen.add(p.id);
  }
  return problems.length ? { ok: false, problems } : { ok: true, path, profile, points };
}

/** Names of the shipped profiles. */
export function listProfiles(): string[] {
  try {
    return readdirSync(profilesDir())
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}
