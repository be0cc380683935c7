/**
 * What changed between two versions of a list of configuration blocks keyed by `id` (drivers of
 * a config, devices of a driver), compared in canonical JSON. Shared by remote configuration
 * (agent/commands/config-plan.ts, config-apply.ts) and the drivers that update in place
 * (Driver.reconfigure), which may import config/ but not agent code.
 */
import { canonicalJson } from "./canonical.js";

export interface IdChange {
  id: string;
  kind: "added" | "changed" | "removed";
}

/** The added and changed blocks in `next`'s order, then the removed ones in `prev`'s order. */
export function diffById(
  prev: readonly { id: string }[],
  next: readonly { id: string }[],
): IdChange[] {
  const before = new Map(prev.map((x) => [x.id, canonicalJson(x)]));
  const after = new Set(next.map((x) => x.id));
  const out: IdChange[] = [];
  for (const x of next) {
    const old = before.get(x.id);
    if (old === undefined) out.push({ id: x.id, kind: "added" });
    else if (old !== canonicalJson(x)) out.push({ id: x.id, kind: "changed" });
  }
  for (const id of before.keys()) if (!after.has(id)) out.push({ id, kind: "removed" });
  return out;
}

/** Ids of the devices added, removed or changed (enabled flag included) between two blocks of one driver. */
export function changedDeviceIds(
  prev: { devices: readonly { id: string }[] },
  next: { devices: readonly { id: string }[] },
): string[] {
  return diffById(prev.devices, next.devices).map((c) => c.id);
}
