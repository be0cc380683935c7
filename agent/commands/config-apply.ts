/**
 * How the running agent takes a new configuration (the `ConfigHost.apply` of control-plane.ts):
 *
 * - a changed driver that implements `Driver.reconfigure` is offered its new block first; when it
 *   accepts, only its changed devices restart (a new point on one meter does not stop the other
 *   meters of the bus); otherwise — or when it throws — it is stopped, re-created and started;
 * - added/removed drivers are started/stopped, the others are not touched;
 * - a changed `uplink` reconnects with the new settings (Uplink.reconfigure). The manager then
 *   waits for the connection and, failing that, applies the previous configuration the same way.
 */
import type { Config } from "../../config/schema.js";
import { configHash, gatewayFacts } from "../../config/facts.js";
import type { Agent } from "../agent.js";
import { rulesFromConfig } from "../pipeline/index.js";
import type { ApplyPlan, ApplyReport, Reconfigured } from "./config-plan.js";

export interface AgentApplyResult extends ApplyReport {
  /** Drivers that could not be created or started (they show in the health check). */
  failures: { id: string; reason: string }[];
}

export async function applyToAgent(
  agent: Agent,
  prev: Config,
  next: Config,
  plan: ApplyPlan,
): Promise<AgentApplyResult> {
  const reconfigured: Reconfigured[] = [];
  const restart: string[] = [];
  for (const id of plan.restart) {
    const before = prev.drivers.find((d) => d.id === id);
    const after = next.drivers.find((d) => d.id === id);
    const driver = agent.drivers.find((d) => d.id === id);
    if (before && after?.enabled && driver?.reconfigure) {
      // Rules first: the devices restarted in place emit at once.
      agent.pipeline.addRules(rulesFromConfig([after]));
      try {
        const devices = await driver.reconfigure(after);
        if (devices) {
          reconfigured.push({ driver: id, devices });
          continue;
        }
      } catch (err) {
        // Possibly half-applied: a full restart puts the driver in a known state.
        agent.logger.error({ err, driver: id }, "in-place reconfiguration failed; restarting");
      }
    }
    restart.push(id);
  }
  const failures = await agent.replaceDrivers(next.drivers, {
    stop: [...plan.stop, ...restart],
    start: [...plan.start, ...restart],
  });
  agent.uplink.setIdentity({ gateway: gatewayFacts(next), configVersion: configHash(next) });
  // A new connection publishes state and inventory itself; otherwise the inventory (and the
  // state's config_version) changed.
  if (plan.uplink) await agent.uplink.reconfigure(next.uplink);
  else if (agent.uplink.connected) agent.uplink.resync();
  return { reconfigured, failures };
}
