/**
 * The local control API of the running agent (issue 8): started by `runAgent` (agent/daemon.ts) after the agent,
 * stopped before it. A socket that cannot be created (no /run/eclor-edge, no permission) is
 * logged and the agent runs on without it: acquisition matters more than the technician's CLI.
 */
import type { Logger } from "pino";
import type { Config } from "../../config/schema.js";
import type { Agent } from "../agent.js";
import { describeError } from "../../core/errors.js";
import { AgentBackend, type LocalWriter } from "./agent-backend.js";
import type { LogRing } from "./logring.js";
import { ControlServer } from "./server.js";

export { LogRing } from "./logring.js";
export { AgentBackend } from "./agent-backend.js";
export { ControlServer } from "./server.js";

export interface ControlHandle {
  /** Hand the command router to the API when the control plane is ready (`eclor-edge write`). */
  setWriter(w: LocalWriter): void;
  close(): Promise<void>;
}

export async function startControl(
  agent: Agent,
  config: Config,
  opts: { logs?: LogRing; logger: Logger },
): Promise<ControlHandle> {
  const logger = opts.logger.child({ component: "control" });
  const backend = new AgentBackend(agent, config, opts.logs);
  const server = new ControlServer(backend, logger);
  try {
    await server.listen(config.control.socket);
  } catch (err) {
    logger.error(
      { err, socket: config.control.socket },
      `the control socket ${config.control.socket} cannot be created (${describeError(err)}): the technician CLI cannot reach this agent; acquisition continues`,
    );
  }
  return {
    setWriter: (w) => backend.setWriter(w),
    close: async () => {
      await server.close();
      backend.dispose();
    },
  };
}
