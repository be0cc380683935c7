/**
 * systemd service notifications (sd_notify(3)): READY=1, STATUS=…, STOPPING=1 and the watchdog
 * keep-alive WATCHDOG=1, for the `Type=notify` unit (systemd/eclor-edge.service).
 *
 * Why a native helper: the protocol is one datagram on the AF_UNIX socket named by
 * $NOTIFY_SOCKET, and Node has no Unix datagram sockets (dropped in 0.5 for Windows, see
 * nodejs/node#29339; the systemd use case is nodejs/node#61933). The optional dependency `sd-notify` wraps libsystemd's sd_notify(); it is sent from this
 * very process, so with `ExecStart=/usr/bin/node …` the sender is the unit's main PID and
 * `NotifyAccess=main` accepts it. (Spawning `systemd-notify` would send from a child PID that
 * systemd drops unless NotifyAccess=all, and a message from a process that exits at once is racy:
 * systemd may no longer be able to tell which unit it belonged to, see systemd-notify(1).)
 *
 * When the helper is missing (not compiled: no libsystemd-dev at install time) or NOTIFY_SOCKET is
 * unset (run by hand, in Docker, under the Type=exec unit), every call is a no-op and ONE debug
 * line says why. The agent must run the same either way.
 */
import { createRequire } from "node:module";
import type { Logger } from "pino";

/** The single primitive used from the native helper: sd_notify(0, state). */
export interface NotifyBackend {
  send(state: string): void;
}

export interface Notifier {
  /** True when notifications really go to systemd. */
  readonly active: boolean;
  /** Startup finished: store open and uplink started (it may still be connecting). */
  ready(status?: string): void;
  /** One line shown by `systemctl status eclor-edge` ("Status: …"). */
  status(text: string): void;
  /** Shutdown began; systemd then waits up to TimeoutStopSec for the process to exit. */
  stopping(status?: string): void;
  readonly watchdog: Watchdog;
}

export interface Watchdog {
  /** Ping interval in ms (half of WATCHDOG_USEC), or 0 when systemd asked for no watchdog. */
  readonly intervalMs: number;
  /**
   * Start pinging WATCHDOG=1 every `intervalMs`. `healthy`, when given, is asked before each ping:
   * returning false skips the ping, so a wedged component (not only a blocked event loop) gets
   * the process restarted by systemd after WatchdogSec. The timer is unref'd.
   */
  start(healthy?: () => boolean): void;
  stop(): void;
}

export interface NotifierOptions {
  logger?: Pick<Logger, "debug" | "warn">;
  /** Environment to read NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID from (tests). */
  env?: NodeJS.ProcessEnv;
  /** Loads the native helper; default: require("sd-notify"). Tests inject failures here. */
  load?: () => NotifyBackend;
  pid?: number;
}

/** Loads the optional `sd-notify` package (CommonJS with a .node addon, hence createRequire). */
export function loadSdNotify(): NotifyBackend {
  const require = createRequire(import.meta.url);
  // The package has no types; we use one function of its native binding (notify.cc: sendState
  // calls sd_notify(0, state)).
  const mod = require("sd-notify") as { sendState?: unknown };
  const sendState = mod.sendState;
  if (typeof sendState !== "function") throw new Error("sd-notify has no sendState()");
  return { send: (state) => void (sendState as (s: string) => unknown)(state) };
}

/**
 * Parses WATCHDOG_USEC/WATCHDOG_PID like sd_watchdog_enabled(3): the watchdog applies to this
 * process only when WATCHDOG_PID is unset or equals our PID. Returns the ping interval (half the
 * timeout, as systemd.service(5) recommends) or 0.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isSafeInteger(usec) || usec <= 0) return 0;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return 0;
  return Math.max(1, Math.floor(usec / 2000));
}

/** STATUS= is one line; a newline would start a new variable assignment in the datagram. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 1000);
}

export function createNotifier(opts: NotifierOptions = {}): Notifier {
  const env = opts.env ?? process.env;
  const pid = opts.pid ?? process.pid;
  const log = opts.logger;
  let backend: NotifyBackend | undefined;
  if (!env.NOTIFY_SOCKET) {
    log?.debug(
      "systemd notifications off: NOTIFY_SOCKET is not set (not started by a Type=notify unit)",
    );
  } else {
    try {
      backend = (opts.load ?? loadSdNotify)();
    } catch (err) {
      log?.debug(
        { err },
        "systemd notifications off: the optional sd-notify helper is not available (use the Type=exec unit)",
      );
    }
  }
  let failed = false;
  const send = (state: string): void => {
    if (!backend) return;
    try {
      backend.send(state);
    } catch (err) {
      // A notification must never take the agent down; say it once.
      if (!failed) log?.warn({ err }, "systemd notification failed");
      failed = true;
    }
  };

  const intervalMs = backend ? watchdogIntervalMs(env, pid) : 0;
  let timer: NodeJS.Timeout | undefined;
  const watchdog: Watchdog = {
    intervalMs,
    start(healthy) {
      if (intervalMs === 0 || timer) return;
      timer = setInterval(() => {
        if (!healthy || healthy()) send("WATCHDOG=1");
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };

  return {
    active: backend !== undefined,
    ready: (status) => send(status ? `READY=1\nSTATUS=${oneLine(status)}` : "READY=1"),
    status: (text) => send(`STATUS=${oneLine(text)}`),
    stopping: (status) => {
      watchdog.stop();
      send(status ? `STOPPING=1\nSTATUS=${oneLine(status)}` : "STOPPING=1");
    },
    watchdog,
  };
}
