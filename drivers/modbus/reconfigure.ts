/**
 * In-place reconfiguration of a Modbus bus (`Driver.reconfigure`, used by remote configuration):
 * when only the `devices` list changed, the pollers of the added, removed or changed devices are
 * stopped/started and every other device keeps its poller, its schedule and its online state —
 * a new point on one meter must not interrupt the twenty others on the same line, nor make them
 * send offline/online events. Any other change (transport, timeouts, defaults the devices
 * inherit) needs a full restart of the driver.
 */
import { canonicalJson } from "../../config/canonical.js";
import { changedDeviceIds } from "../../config/diff.js";
import type { ModbusDevice } from "./device.js";
import type { ModbusLink } from "./link.js";
import type { ModbusDeviceConfig, ModbusDriverConfig } from "./schema.js";

/** Everything but `devices` is the same: the devices can be restarted one by one. */
export function sameBus(a: ModbusDriverConfig, b: ModbusDriverConfig): boolean {
  return canonicalJson({ ...a, devices: null }) === canonicalJson({ ...b, devices: null });
}

export interface BusState {
  devices: Map<string, ModbusDevice>;
  links: Map<string, ModbusLink>;
  running: boolean;
  /** A device on its link (an existing open link when the endpoint is shared, else a new one). */
  create(dev: ModbusDeviceConfig): ModbusDevice;
}

/**
 * Apply `next` (same bus, see `sameBus`) to the running devices. Returns the ids of the devices
 * that were restarted, added or removed. Links left without a device are closed.
 */
export async function reconfigureDevices(
  bus: BusState,
  prev: ModbusDriverConfig,
  next: ModbusDriverConfig,
): Promise<string[]> {
  const changed = changedDeviceIds(prev, next);
  if (changed.length === 0) return [];
  const kept = new Map(bus.devices);
  for (const id of changed) {
    // A poll in flight finishes on its link but emits nothing once stopped (device.ts).
    kept.get(id)?.stop();
    kept.delete(id);
  }
  // Rebuilt in the configuration's order (status() lists devices in map order).
  bus.devices.clear();
  for (const dev of next.devices) {
    const old = kept.get(dev.id);
    if (old) bus.devices.set(dev.id, old);
    else if (dev.enabled && changed.includes(dev.id)) {
      const d = bus.create(dev);
      bus.devices.set(dev.id, d);
      if (bus.running) d.start();
    }
  }
  const used = new Set([...bus.devices.values()].map((d) => d.link));
  const orphans = [...bus.links].filter(([, l]) => !used.has(l));
  for (const [key] of orphans) bus.links.delete(key);
  await Promise.all(orphans.map(([, l]) => l.close()));
  return changed;
}
