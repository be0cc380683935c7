/**
 * Walks a zod schema alongside the data it validated, to find the schema that governs a path.
 * Used only for better error messages (allowed keys, "did you mean", discriminator choices).
 */
import type { z } from "zod";

type Any = z.core.$ZodType;

interface Def {
  type: string;
  shape?: Record<string, Any>;
  element?: Any;
  options?: Any[];
  innerType?: Any;
  in?: Any;
  out?: Any;
  discriminator?: string;
  values?: unknown[];
}

function def(s: Any): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** Strip wrappers (default, optional, pipe, prefault…) down to the structural schema. */
export function unwrap(s: Any): Any {
  for (let i = 0; i < 20; i++) {
    const d = def(s);
    if (d.innerType) s = d.innerType;
    else if (d.type === "pipe" && d.in) s = d.in;
    else return s;
  }
  return s;
}

/** The option of a union that matches `data` (by discriminator, else the first object option). */
function pickOption(s: Any, data: unknown): Any | undefined {
  const d = def(s);
  if (!d.options) return undefined;
  if (d.discriminator && data && typeof data === "object") {
    const v = (data as Record<string, unknown>)[d.discriminator];
    for (const o of d.options) {
      const lit = def(unwrap(o)).shape?.[d.discriminator];
      if (lit && literalValues(lit).includes(v)) return o;
    }
    return undefined;
  }
  return d.options.find((o) => def(unwrap(o)).type === "object");
}

export function literalValues(s: Any): unknown[] {
  const d = def(unwrap(s));
  return d.values ?? [];
}

export function schemaAt(root: Any, data: unknown, path: readonly PropertyKey[]): Any | undefined {
  let s: Any | undefined = unwrap(root);
  let cur: unknown = data;
  for (const seg of path) {
    if (!s) return undefined;
    let d = def(s);
    if (d.type === "union") {
      s = pickOption(s, cur);
      if (!s) return undefined;
      s = unwrap(s);
      d = def(s);
    }
    if (d.type === "object" && d.shape) s = d.shape[String(seg)];
    else if (d.type === "array" && d.element) s = d.element;
    else if (d.type === "record") s = (d as { valueType?: Any }).valueType;
    else return undefined;
    if (s) s = unwrap(s);
    cur =
      cur && typeof cur === "object" ? (cur as Record<string, unknown>)[String(seg)] : undefined;
  }
  if (s && def(s).type === "union") {
    const o = pickOption(s, cur);
    if (o) return unwrap(o);
  }
  return s;
}

export function allowedKeysAt(root: Any, data: unknown, path: readonly PropertyKey[]): string[] {
  const s = schemaAt(root, data, path);
  const shape = s ? def(s).shape : undefined;
  return shape ? Object.keys(shape) : [];
}
