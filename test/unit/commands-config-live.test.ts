/**
 * The config manager's live paths with a scripted host: drivers updated in place are reported in
 * `reconfigured` (not `restarted`), an uplink that does not connect is rolled back with the
 * connection's own words and announced by a `config_rolled_back` event, and the generic device
 * diff the agent reports.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../agent/commands/audit.js";
import { ConfigManager } from "../../agent/commands/config-manager.js";
import {
  type ApplyPlan,
  type ApplyReport,
  type ConfigHost,
  planChanges,
} from "../../agent/commands/config-plan.js";
import { ConfigVersions, chooseStartupConfig } from "../../agent/commands/config-versions.js";
import { Journal } from "../../agent/commands/journal.js";
import { resultSchemas } from "../../agent/commands/schemas.js";
import { changedDeviceIds } from "../../config/diff.js";
import { validateConfigObject } from "../../config/load.js";
import type { Config } from "../../config/schema.js";
import type { DriverEvent } from "../../drivers/driver.js";
import { TempDb, silent } from "./commands-helpers.js";

const refs = { env: {}, baseDir: "/" };
const dev = (id: string, address = 0) => ({
  id,
  unit_id: 1,
  points: [{ id: "p", table: "holding", address }],
});
function raw(url = "mqtt://127.0.0.1:1883", devices = [dev("m1"), dev("m2")]) {
  return {
    version: 1,
    gateway: { id: "gw-1" },
    uplink: { url },
    drivers: [
      { id: "bus", driver: "modbus", transport: { type: "tcp", host: "127.0.0.1" }, devices },
    ],
  } as Record<string, unknown>;
}

class Host implements ConfigHost {
  applied: { next: Config; plan: ApplyPlan }[] = [];
  /** The uplink connects only to this URL. */
  reachable = "mqtt://127.0.0.1:1883";
  constructor(public cfg: Config) {}
  current(): Config {
    return this.cfg;
  }
  apply(next: Config, plan: ApplyPlan): Promise<ApplyReport> {
    this.applied.push({ next, plan });
    const before = this.cfg;
    this.cfg = next;
    // Every changed driver takes its change in place, as the Modbus driver does for devices.
    return Promise.resolve({
      reconfigured: plan.restart.map((id) => ({
        driver: id,
        devices: changedDeviceIds(
          before.drivers.find((d) => d.id === id)!,
          next.drivers.find((d) => d.id === id)!,
        ),
      })),
    });
  }
  health() {
    const ok = this.cfg.uplink.url === this.reachable;
    return {
      failed: [],
      uplinkConnected: ok,
      uplinkError: ok ? undefined : `EE0301 cannot connect to ${this.cfg.uplink.url}: ECONNREFUSED`,
    };
  }
}

let tmp: TempDb;
let host: Host;
let events: DriverEvent[];
let manager: ConfigManager;
beforeEach(() => {
  tmp = new TempDb();
  host = new Host(validateConfigObject(raw(), "test", refs));
  events = [];
  const versions = new ConfigVersions(tmp.db);
  chooseStartupConfig(versions, { raw: raw(), hash: "h" });
  manager = new ConfigManager(
    {
      host,
      versions,
      journal: new Journal(tmp.db),
      audit: new AuditLog(tmp.db),
      refs,
      fileHash: () => "h",
      filePath: null,
      rollbackWindowMs: 200,
      remoteAllowed: true,
      logger: silent,
      pollMs: 20,
      liveUplink: true,
      event: (e) => events.push(e),
    },
    raw(),
  );
});
afterEach(() => tmp.dispose());

describe("config/set applied live", () => {
  it("lists a driver updated in place with its devices, not as restarted", async () => {
    const r = await manager.set(raw(undefined, [dev("m1"), dev("m2", 7), dev("m3")]), {
      who: "hypervisor",
      commandId: "d1",
      dryRun: false,
    });
    expect(r).toMatchObject({
      ok: true,
      result: { restarted: [], reconfigured: [{ driver: "bus", devices: ["m2", "m3"] }] },
    });
    if (r.ok) expect(resultSchemas["config/set"].parse(r.result)).toBeTruthy();
    // A dry run cannot know: every changed driver shows as restarted.
    const dry = await manager.set(raw(undefined, [dev("m1")]), {
      who: "hypervisor",
      commandId: "d2",
      dryRun: true,
    });
    expect(dry).toMatchObject({ ok: true, result: { restarted: ["bus"], reconfigured: [] } });
  });

  it("applies an uplink change live, and rolls it back with the connection's words when it cannot connect", async () => {
    host.reachable = "mqtt://10.0.0.2:1883";
    const ok = await manager.set(raw("mqtt://10.0.0.2:1883"), {
      who: "hypervisor",
      commandId: "u1",
      dryRun: false,
    });
    expect(ok).toMatchObject({ ok: true, result: { pending_restart: [] } });
    expect(host.applied.at(-1)?.plan.uplink).toBe(true);
    const bad = await manager.set(raw("mqtt://10.0.0.9:1883"), {
      who: "hypervisor",
      commandId: "u2",
      dryRun: false,
    });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.error.message).toBe(
      "the new configuration was rolled back: the uplink did not reconnect to the broker (EE0301 cannot connect to mqtt://10.0.0.9:1883: ECONNREFUSED) within 200 ms",
    );
    expect(host.cfg.uplink.url).toBe("mqtt://10.0.0.2:1883");
    expect(host.applied.map((a) => [a.next.uplink.url, a.plan.uplink])).toEqual([
      ["mqtt://10.0.0.2:1883", true],
      ["mqtt://10.0.0.9:1883", true],
      ["mqtt://10.0.0.2:1883", true],
    ]);
    expect(events).toMatchObject([
      {
        type: "config_rolled_back",
        severity: "error",
        data: { command_id: "u2", who: "hypervisor", rolled_back_ok: true },
      },
    ]);
  });

  it("plans an uplink change as pending on a host that cannot reconnect it", () => {
    const a = validateConfigObject(raw(), "a", refs);
    const b = validateConfigObject(raw("mqtt://10.0.0.2:1883"), "b", refs);
    expect(planChanges(a, b, false)).toMatchObject({ uplink: false, pendingRestart: ["uplink"] });
    expect(planChanges(a, b, true)).toMatchObject({ uplink: true, pendingRestart: [] });
  });
});
