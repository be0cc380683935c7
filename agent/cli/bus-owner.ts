/**
 * Does the running agent own this bus? Direct commissioning commands ask first, so a technician
 * never fights the agent for a serial line (two masters on one RS-485 pair garble each other's
 * frames) or opens a second connection to a gateway that accepts one. When the agent is not
 * running (or not reachable), the answer is simply "no".
 */
import { lookup } from "node:dns/promises";
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

/**
 * The addresses a host name or literal connects to, compared as the kernel would (issue 14.7):
 * `127.1` and `[::ffff:127.0.0.1]` are 127.0.0.1, and every loopback or "this host" address
 * (127.0.0.0/8, ::1, 0.0.0.0, ::) is the same machine — so the technician cannot bypass the
 * ownership check by spelling the agent's endpoint differently. An unresolvable name is
 * compared as written.
 */
async function addressesOf(host: string): Promise<Set<string>> {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  let addrs: string[];
  try {
    addrs = (await lookup(h, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    addrs = [h];
  }
  return new Set(addrs.map(canonicalAddress));
}

function canonicalAddress(a: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(a)?.[1] ?? a;
  if (/^127\./.test(v4) || v4 === "0.0.0.0" || v4 === "::1" || v4 === "::") return "loopback";
  return v4.toLowerCase();
}

/** Same serial port (synchronous: paths need no lookup). */
export function samePort(bus: BusInfo, path: string): boolean {
  return bus.path !== undefined && canonicalPath(bus.path) === canonicalPath(path);
}

export async function sameBus(bus: BusInfo, ep: Endpoint): Promise<boolean> {
  if ("path" in ep) return samePort(bus, ep.path);
  if (bus.host === undefined || bus.port !== ep.port) return false;
  const [a, b] = await Promise.all([addressesOf(bus.host), addressesOf(ep.host)]);
  return [...a].some((x) => b.has(x));
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
    for (const bus of buses) if (await sameBus(bus, ep)) return { bus, client };
  } catch {
    // An agent without the method owns nothing we can tell: proceed directly.
  }
  client.close();
  return undefined;
}

export function describeBus(b: BusInfo): string {
  return `${b.path ?? `${b.host}:${b.port}`} (driver "${b.driver}", ${b.kind})`;
}
