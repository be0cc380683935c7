/**
 * CLI output helpers: human output by default, `--json` for scripts; colour only on a TTY and
 * never when NO_COLOR is set (https://no-color.org). Errors end the process with the contract's
 * exit codes: 0 ok, 1 runtime failure, 2 bad input.
 */
import { EdgeError, describeError, isEdgeError } from "../../core/errors.js";

export const useColor = (stream: NodeJS.WriteStream = process.stdout): boolean =>
  Boolean(stream.isTTY) && !("NO_COLOR" in process.env && process.env.NO_COLOR !== "");

const wrap = (open: number, close: number) => (s: string) =>
  useColor() ? `\u001b[${open}m${s}\u001b[${close}m` : s;
export const bold = wrap(1, 22);
export const red = wrap(31, 39);
export const green = wrap(32, 39);
export const yellow = wrap(33, 39);
export const dim = wrap(2, 22);

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Print an error in one plain line (no stack trace) and exit with its code. */
export function fail(e: unknown, json = false): never {
  const code = isEdgeError(e) ? e.exitCode : 1;
  if (json) {
    const err = isEdgeError(e)
      ? {
          code: e.codeName,
          ecode: e.code,
          message: e.text,
          ...(e.details ? { details: e.details } : {}),
        }
      : { code: "Internal", message: describeError(e) };
    process.stdout.write(`${JSON.stringify({ ok: false, error: err }, null, 2)}\n`);
  } else {
    process.stderr.write(
      `${useColor(process.stderr) ? "\u001b[31merror\u001b[39m" : "error"}: ${describeError(e)}\n`,
    );
  }
  process.exit(code);
}

export function usage(message: string): EdgeError {
  return new EdgeError(601, message);
}
