/**
 * Logging: pino, JSON lines on stdout in production (journald keeps them; read them with
 * `journalctl -u eclor-edge -o cat | pino-pretty`), pretty output when stdout is a TTY.
 * One child logger per component (`{component}`) and per driver/device (`{driver, device}`).
 * Credentials and keys are redacted wherever they appear in logged objects.
 */
import { fstatSync } from "node:fs";
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

/**
 * pino level → syslog priority (sd-daemon(3): a line starting with `<N>` gets priority N in the
 * journal, the prefix is removed): trace/debug 7, info 6, warn 4, error 3, fatal 2.
 */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * Whether fd 1 is the journal's stream: systemd sets JOURNAL_STREAM=<dev>:<inode> of the socket it
 * connected stdout to (systemd.exec(5), "$JOURNAL_STREAM"). Only then are `<N>` prefixes right; a
 * pipe into `docker logs` or a file keeps plain JSON lines.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  const [dev, ino] = js.split(":");
  try {
    const st = fstatSync(fd, { bigint: true });
    return `${st.dev}` === dev && `${st.ino}` === ino;
  } catch {
    return false;
  }
}

const LEVEL_RE = /^\{"level":(\d+)/;

/**
 * Prefixes each JSON line with its syslog priority, so `journalctl -p err` shows the agent's
 * errors (without it every line is priority 6, journald's default for stdout). pino writes one
 * complete line per write() and puts `level` first.
 */
export function journalPriorities(dest: pino.DestinationStream): pino.DestinationStream {
  return {
    write(line: string) {
      const m = LEVEL_RE.exec(line);
      dest.write(m ? `<${syslogPriority(Number(m[1]))}>${line}` : line);
    },
  };
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
  const stdout = pino.destination({ sync: false });
  const main = stdoutIsJournal() ? journalPriorities(stdout) : stdout;
  return pino(base, withTee(main, opts.tee));
}
