/**
 * Loads, resolves and validates a configuration file. All problems are collected and reported at
 * once, each with its path and the expected form; nothing is applied unless everything is valid.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isMap, isSeq, parseDocument } from "yaml";
import type { z } from "zod";
import { EdgeError, ErrorCode } from "../core/errors.js";
import { type ConfigProblem, formatIssues, formatPath } from "./issues.js";
import { resolveRefs, type RefContext } from "./refs.js";
import { type RemoteRefContext, isSecretKey, resolveRemote } from "./remote-refs.js";
import { type Config, configSchema } from "./schema.js";
import { allowedKeysAt } from "./walk.js";

export interface LoadOptions {
  env?: Readonly<Record<string, string | undefined>>;
  readFile?: (path: string) => string;
}

export function configError(source: string, problems: ConfigProblem[]): EdgeError {
  const lines = problems.map((p) => `  ${p.path}: ${p.message}`).join("\n");
  return new EdgeError(
    ErrorCode.ConfigInvalid,
    `${source}: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n${lines}`,
    { problems },
  );
}

/** Validate an already-parsed object of the LOCAL file (its references are resolved). */
export function validateConfigObject(raw: unknown, source: string, ctx: RefContext): Config {
  const problems: ConfigProblem[] = [];
  const sensitive = new Set<string>();
  const resolved = resolveRefs(raw, { ...ctx, sensitive }, problems);
  return validateResolved(resolved, source, problems, sensitive);
}

/**
 * Validate a remote configuration (config/set, or one stored by it): plain data, references only
 * as remote-refs.ts allows.
 */
export function validateRemoteConfig(raw: unknown, source: string, ctx: RemoteRefContext): Config {
  const problems: ConfigProblem[] = [];
  const sensitive = new Set<string>();
  const resolved = resolveRemote(raw, ctx, problems, sensitive);
  return validateResolved(resolved, source, problems, sensitive);
}

function validateResolved(
  resolved: unknown,
  source: string,
  problems: ConfigProblem[],
  sensitive: Set<string>,
): Config {
  // Validate even after reference problems, to report every problem at once.
  const result = configSchema.safeParse(resolved, { reportInput: true });
  if (!result.success) {
    problems.push(
      ...formatIssues(
        result.error.issues,
        (p) => allowedKeysAt(configSchema, resolved, p),
        // A value from a reference or in a secret field is never echoed in an error.
        (p) => sensitive.has(formatPath(p)) || isSecretKey(p[p.length - 1]),
      ),
    );
  }
  if (problems.length > 0) throw configError(source, problems);
  return result.data!;
}

/** Parse YAML text; YAML syntax errors are reported with line and column. */
export function parseConfigText(
  text: string,
  source: string,
  opts: LoadOptions & { baseDir: string },
): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw configError(
      source,
      doc.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "(yaml)",
        message: e.message.split("\n")[0]!,
      })),
    );
  }
  if (!isMap(doc.contents) && !isSeq(doc.contents) && doc.contents !== null) {
    throw configError(source, [
      {
        path: "(root)",
        message: "expected a YAML mapping with version, gateway, uplink … at the top level",
      },
    ]);
  }
  const raw: unknown = doc.toJS() ?? {};
  return validateConfigObject(raw, source, {
    env: opts.env ?? process.env,
    baseDir: opts.baseDir,
    ...(opts.readFile ? { readFile: opts.readFile } : {}),
  });
}

export function loadConfigFile(file: string, opts: LoadOptions = {}): Config {
  const path = resolve(file);
  let text: string;
  try {
    text = (opts.readFile ?? ((p) => readFileSync(p, "utf8")))(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "does not exist — pass --config FILE or create /etc/eclor-edge/config.yaml"
        : code === "EACCES"
          ? "is not readable by this user"
          : code === "EISDIR"
            ? "is a directory, expected a YAML file"
            : String((e as Error).message);
    throw new EdgeError(ErrorCode.ConfigUnreadable, `config file ${path} ${why}`, { path });
  }
  return parseConfigText(text, path, { ...opts, baseDir: dirname(path) });
}

export type { ConfigProblem };
export { formatPath };
export type ConfigSchema = z.infer<typeof configSchema>;
