/**
 * Logging: pino, JSON lines on stdout in production (journald keeps them; read them with
 * `journalctl -u eclor-edge -o cat | pino-pretty`), pretty output when stdout is a TTY.
 * One child logger per component (`{component}`) and per driver/device (`{driver, device}`).
 * Credentials and keys are redacted wherever they appear in logged objects.
 */
import { pino, type Logger, type LevelWithSilent } from "pino";

export const REDACT_PATHS = [
  "password",
  "*.password",
  "*.*.password",
  "token",
  "*.token",
  "key",
  "*.key",
  "*.*.key",
  "app_key",
  "*.app_key",
  "*.*.app_key",
  "nwk_s_key",
  "*.nwk_s_key",
  "*.*.nwk_s_key",
  "app_s_key",
  "*.app_s_key",
  "*.*.app_s_key",
  "authorization",
  "*.authorization",
];

export interface LogOptions {
  level?: LevelWithSilent;
  /** Force pretty or JSON output; default: pretty when stdout is a TTY. */
  pretty?: boolean;
  /** Write to this destination instead of stdout (tests, the control API's log ring). */
  destination?: pino.DestinationStream;
  /** Also copy every line here, besides stdout (the control API's ring for `eclor-edge logs`). */
  tee?: pino.DestinationStream;
}

/** `main`, plus `tee` when given; levels are filtered by the logger, not by the streams. */
function withTee(
  main: pino.DestinationStream,
  tee?: pino.DestinationStream,
): pino.DestinationStream {
  if (!tee) return main;
  return pino.multistream([
    { level: "trace", stream: main },
    { level: "trace", stream: tee },
  ]);
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? "info";
  const base = { redact: { paths: REDACT_PATHS, censor: "[redacted]" }, level };
  if (opts.destination) return pino(base, opts.destination);
  const pretty = opts.pretty ?? (process.stdout.isTTY && !process.env.NO_COLOR ? true : false);
  if (pretty) {
    const transport = {
      target: "pino-pretty",
      options: {
        colorize: !process.env.NO_COLOR,
        translateTime: "SYS:HH:MM:ss.l",
        ignore: "pid,hostname",
      },
    };
    if (opts.tee) return pino(base, withTee(pino.transport(transport), opts.tee));
    return pino({ ...base, transport });
  }
  return pino(base, withTee(pino.destination({ sync: false }), opts.tee));
}
