/**
 * Does the running agent own this bus? Direct commissioning commands ask first, so a technician
 * never fights the agent for a serial line (two masters on one RS-485 pair garble each other's
 * frames) or opens a second connection to a gateway that accepts one. When the agent is not
 * running (or not reachable), the answer is simply "no".
 */
import { realpathSync } from "node:fs";
import type { BusInfo } from "../control/backend.js";
import type { ControlClient } from "../control/client.js";
import { type AgentOptions, resolveSocket } from "./agent-conn.js";

export type Endpoint = { path: string } | { host: string; port: number };

function canonicalPath(p: string): string {
  try {
    // /dev/serial/by-id/… and /dev/ttyUSB0 are the same port.
    return realpathSync(p);
  } catch {
    return p;
  }
}

export function sameBus(bus: BusInfo, ep: Endpoint): boolean {
  if ("path" in ep)
    return bus.path !== undefined && canonicalPath(bus.path) === canonicalPath(ep.path);
  const norm = (h: string) => (h === "localhost" || h === "::1" ? "127.0.0.1" : h.toLowerCase());
  return bus.host !== undefined && norm(bus.host) === norm(ep.host) && bus.port === ep.port;
}

export interface Owner {
  bus: BusInfo;
  client: ControlClient;
}

/** A client of the agent on `socket` (the caller closes it), or undefined when none answers. */
export async function connectIfRunning(socket: string): Promise<ControlClient | undefined> {
  const { ControlClient } = await import("../control/client.js");
  try {
    return await ControlClient.connect(socket, { timeoutMs: 1500 });
  } catch {
    return undefined; // not reachable: the agent is not running (or not ours to ask)
  }
}

/**
 * The agent's bus matching `ep`, with an open client to the agent (the caller closes it), or
 * undefined when the agent is not reachable or does not own the bus.
 */
export async function findOwner(opts: AgentOptions, ep: Endpoint): Promise<Owner | undefined> {
  const client = await connectIfRunning(await resolveSocket(opts));
  if (!client) return undefined;
  try {
    const { buses } = await client.call<{ buses: BusInfo[] }>("buses");
    const bus = buses.find((b) => sameBus(b, ep));
    if (bus) return { bus, client };
  } catch {
    // An agent without the method owns nothing we can tell: proceed directly.
  }
  client.close();
  return undefined;
}

export function describeBus(b: BusInfo): string {
  return `${b.path ?? `${b.host}:${b.port}`} (driver "${b.driver}", ${b.kind})`;
}
