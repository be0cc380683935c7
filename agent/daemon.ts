/**
 * The `eclor-edge run` daemon around an `Agent` (agent.ts): the startup configuration, the
 * systemd notifier, the local control socket, the command router, and a clean stop on
 * SIGTERM/SIGINT. Kept apart from agent.ts so that the command modules, which use the agent,
 * are not imported by it (issue 19.1: no runtime import cycle).
 */
import type { Config } from "../config/schema.js";
import { Agent } from "./agent.js";
import { attachWhenReady } from "./commands/control-plane.js";
import { resolveStartupConfig } from "./commands/startup.js";
import { LogRing, startControl } from "./control/index.js";
import { loadNotifier, type Notifier } from "./hooks.js";
import { createLogger } from "./log.js";
import { lockStateDir } from "./store/db.js";

export interface RunOptions {
  configPath: string;
}

/** The `eclor-edge run` daemon: start, notify, stop cleanly on SIGTERM/SIGINT, exit 0. */
export async function runAgent(fileConfig: Config, opts: RunOptions): Promise<void> {
  // The control API serves the recent lines to `eclor-edge logs` (agent/control/logring.ts).
  const logRing = new LogRing();
  const logger = createLogger({ level: fileConfig.log.level, tee: logRing });
  // One agent per state directory (issue 14.7): before the store is opened.
  lockStateDir(fileConfig.state_dir);
  const notifier: Notifier = await loadNotifier(logger.child({ component: "systemd" }));
  // The local file or the last remote configuration (precedence: agent/commands/config-versions.ts).
  const startup = resolveStartupConfig(opts.configPath, fileConfig, { record: true, logger });
  logger.info({ source: startup.source, config_version: startup.version?.version }, startup.reason);
  const config = startup.config;
  const agent = new Agent(config, { configPath: opts.configPath, logger });
  await agent.start();
  const control = await startControl(agent, config, { logs: logRing, logger });
  const stopCommands = attachWhenReady(
    agent,
    {
      config,
      raw: startup.raw,
      configPath: opts.configPath,
      fileHash: startup.fileHash,
      logger,
    },
    (cp) => control.setWriter(cp),
  );
  // Pings only while the health model allows (agent/health/monitor.ts `watchdogOk`); a frozen
  // event loop stops them by itself, the ping being a timer on that loop.
  notifier.ready(() => agent.health.watchdogOk());
  let last = "";
  const tick = (): void => {
    const s = agent.summary();
    if (s !== last) notifier.status(s);
    last = s;
  };
  tick();
  const statusTimer = setInterval(tick, 5000);
  const forceStatus = setInterval(() => notifier.status(agent.summary()), 30_000);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      logger.info({ signal: sig }, `received ${sig}, stopping`);
      notifier.stopping();
      resolve();
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  clearInterval(statusTimer);
  clearInterval(forceStatus);
  const hard = setTimeout(() => {
    logger.error("clean stop took longer than 8 s; exiting anyway (committed readings are safe)");
    logger.flush();
    process.exit(1);
  }, 8000);
  stopCommands();
  await control.close();
  await agent.stop();
  clearTimeout(hard);
  logger.flush();
  process.exit(0);
}
