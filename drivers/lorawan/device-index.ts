/**
 * Which configured device a frame is for: DevEUI → device for Join Requests, DevAddr → devices
 * for data frames (a list: DevAddrs are not unique, the MIC tells the sessions apart), kept in
 * step with the sessions. `restoreSessions` builds it at start: ABP sessions from the config
 * (keeping their persisted counters), OTAA sessions from the durable state; joins update it.
 */
import { randomUUID } from "node:crypto";
import type { DeviceRuntime } from "./devices.js";
import type { LorawanState } from "./sessions.js";

export class DeviceIndex {
  private readonly byAddr = new Map<string, DeviceRuntime[]>();
  private readonly byEui = new Map<string, DeviceRuntime>();

  constructor(devices: readonly DeviceRuntime[]) {
    for (const dev of devices) this.byEui.set(dev.devEui, dev);
  }

  byDevEui(devEui: string): DeviceRuntime | undefined {
    return this.byEui.get(devEui);
  }

  byDevAddr(devAddr: string): DeviceRuntime[] | undefined {
    return this.byAddr.get(devAddr);
  }

  hasDevAddr(devAddr: string): boolean {
    return this.byAddr.has(devAddr);
  }

  /** `dev` now answers to `devAddr` only (its previous session's address is forgotten). */
  bind(dev: DeviceRuntime, devAddr: string): void {
    for (const [addr, list] of this.byAddr) {
      const rest = list.filter((x) => x !== dev);
      if (rest.length !== list.length) {
        if (rest.length) this.byAddr.set(addr, rest);
        else this.byAddr.delete(addr);
      }
    }
    this.byAddr.set(devAddr, [...(this.byAddr.get(devAddr) ?? []), dev]);
  }
}

/** Restore sessions: ABP from the config (keeping persisted counters), OTAA from the state. */
export function restoreSessions(
  devices: readonly DeviceRuntime[],
  state: LorawanState,
  index: DeviceIndex,
): void {
  for (const dev of devices) {
    const a = dev.cfg.activation;
    let s = state.session(dev.id);
    if (a.type === "abp") {
      if (
        !s ||
        s.activation !== "abp" ||
        s.devAddr !== a.dev_addr ||
        s.nwkSKey !== a.nwk_s_key ||
        s.appSKey !== a.app_s_key
      ) {
        // New or re-keyed ABP device: counters restart (the device must restart them too).
        s = {
          sid: randomUUID(),
          activation: "abp",
          devAddr: a.dev_addr,
          nwkSKey: a.nwk_s_key,
          appSKey: a.app_s_key,
          fCntUp: 0,
          lastFCntUp: -1,
          fCntDown: 0,
        };
        state.saveSession(dev.id, s);
      }
    } else if (s && s.activation !== "otaa") {
      state.dropSession(dev.id);
      s = undefined;
    }
    if (s) index.bind(dev, s.devAddr);
  }
  state.commit();
}
