/**
 * Facts derived from a configuration that the uplink announces: a short hash for `config_version`
 * in the state message and the gateway block of the inventory message. They live beside the
 * configuration (not in agent.ts) so that applying a configuration at run time
 * (agent/commands/config-apply.ts) does not import the agent's wiring (issue 19.1: the runtime
 * cycle agent.ts ↔ control-plane.ts ↔ config-apply.ts).
 */
import { createHash } from "node:crypto";
import type { Config } from "./schema.js";

/** Short stable hash of a configuration, for `config_version` in the state message. */
export function configHash(config: Config): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 12);
}

/** The gateway block of the inventory message (docs/mqtt-api.md, `inventory`). */
export interface GatewayFacts {
  id: string;
  name?: string;
  commune?: string;
  location?: { lat: number; lon: number };
}

export function gatewayFacts(config: Config): GatewayFacts {
  const g = config.gateway;
  return {
    id: g.id,
    ...(g.name !== undefined ? { name: g.name } : {}),
    ...(g.commune !== undefined ? { commune: g.commune } : {}),
    ...(g.location !== undefined ? { location: g.location } : {}),
  };
}
