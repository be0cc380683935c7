/**
 * How CLI commands reach the running agent: the control socket from `--socket`, else
 * $ECLOR_EDGE_SOCKET, else `control.socket` of the config file (`--config`, default
 * /etc/eclor-edge/config.yaml), else /run/eclor-edge/control.sock.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { ConnectOptions, ControlClient } from "../control/client.js";
import { DEFAULT_CONFIG_PATH, DEFAULT_CONTROL_SOCKET } from "../paths.js";

export interface AgentOptions {
  socket?: string;
  config?: string;
  json?: boolean;
}

export function withAgentOptions(cmd: Command): Command {
  return cmd
    .option(
      "--socket <path>",
      "control socket of the agent (default: from the config file, or $ECLOR_EDGE_SOCKET)",
    )
    .option("-c, --config <file>", "config file, to find the control socket", DEFAULT_CONFIG_PATH);
}

export async function resolveSocket(opts: AgentOptions): Promise<string> {
  if (opts.socket) return opts.socket;
  const env = process.env.ECLOR_EDGE_SOCKET;
  if (env) return env;
  const file = opts.config ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return DEFAULT_CONTROL_SOCKET;
  }
  try {
    // Only the socket path is needed: a config with mistakes elsewhere must not stop a
    // technician from asking the agent what is wrong.
    const { parse } = await import("yaml");
    const doc = parse(text) as { control?: { socket?: unknown } } | null;
    const s = doc?.control?.socket;
    return typeof s === "string" && s !== "" ? s : DEFAULT_CONTROL_SOCKET;
  } catch {
    return DEFAULT_CONTROL_SOCKET;
  }
}

/** Connect, run `fn`, always close. Connection errors are EdgeErrors for `fail()`. */
export async function withAgent<T>(
  opts: AgentOptions,
  fn: (c: ControlClient) => Promise<T>,
  connect: ConnectOptions = {},
): Promise<T> {
  const { ControlClient } = await import("../control/client.js");
  const client = await ControlClient.connect(await resolveSocket(opts), connect);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
