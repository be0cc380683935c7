import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../agent/commands/audit.js";
import { ConfigManager } from "../../agent/commands/config-manager.js";
import { type ApplyPlan, type ConfigHost, planChanges } from "../../agent/commands/config-plan.js";
import {
  ConfigVersions,
  chooseStartupConfig,
  sha256,
} from "../../agent/commands/config-versions.js";
import { Journal } from "../../agent/commands/journal.js";
import { REDACTED, redactSecrets, restoreRedacted } from "../../agent/commands/redact.js";
import { resultSchemas } from "../../agent/commands/schemas.js";
import { validateConfigObject } from "../../config/load.js";
import type { Config } from "../../config/schema.js";
import { TempDb, silent } from "./commands-helpers.js";

const refs = { env: { MQTT_PASS: "s3cret" }, baseDir: "/" };

function bus(id: string, port: number, dim = 100) {
  return {
    id,
    driver: "modbus",
    transport: { type: "tcp", host: "127.0.0.1", port },
    devices: [
      {
        id: `lamp-${id}`,
        unit_id: 1,
        points: [{ id: "dim", table: "holding", address: 0, writable: true, min: 0, max: dim }],
      },
    ],
  };
}
function rawConfig(drivers = [bus("a", 5020), bus("b", 5021)]) {
  return {
    version: 1,
    gateway: { id: "gw-1" },
    state_dir: "/var/lib/eclor-edge",
    uplink: { url: "mqtt://127.0.0.1:1883", username: "gw-1", password: "${MQTT_PASS}" },
    drivers,
  } as Record<string, unknown>;
}

class FakeHost implements ConfigHost {
  applied: { next: Config; plan: ApplyPlan }[] = [];
  failing = new Set<string>();
  constructor(public cfg: Config) {}
  current(): Config {
    return this.cfg;
  }
  apply(next: Config, plan: ApplyPlan): Promise<void> {
    this.applied.push({ next, plan });
    this.cfg = next;
    return Promise.resolve();
  }
  health() {
    const failed = this.cfg.drivers
      .filter((d) => this.failing.has(d.id))
      .map((d) => ({ id: d.id, reason: "port /dev/ttyNOPE missing" }));
    return { failed, uplinkConnected: true };
  }
}

let tmp: TempDb;
let host: FakeHost;
let versions: ConfigVersions;
let audit: AuditLog;
let manager: ConfigManager;
beforeEach(() => {
  tmp = new TempDb();
  host = new FakeHost(validateConfigObject(rawConfig(), "test", refs));
  versions = new ConfigVersions(tmp.db);
  audit = new AuditLog(tmp.db);
  chooseStartupConfig(versions, { raw: rawConfig(), hash: "file-hash-1" });
  manager = new ConfigManager(
    {
      host,
      versions,
      journal: new Journal(tmp.db),
      audit,
      refs,
      fileHash: () => "file-hash-1",
      filePath: "/etc/eclor-edge/config.yaml",
      rollbackWindowMs: 300,
      remoteAllowed: true,
      logger: silent,
      pollMs: 20,
    },
    rawConfig(),
  );
});
afterEach(() => tmp.dispose());

describe("config/set", () => {
  it("reports all five mistakes with their paths and changes nothing", async () => {
    const bad = rawConfig([bus("a", 70000), bus("b", 5021)]);
    (bad.gateway as Record<string, unknown>).name = 12;
    (bad.uplink as Record<string, unknown>).url = "http://broker";
    (bad.uplink as Record<string, unknown>).keepalive = 30;
    (
      (bad.drivers as ReturnType<typeof bus>[])[1]!.devices[0]!.points[0] as Record<string, unknown>
    ).address = -1;
    bad.state_dir = "/tmp/elsewhere";
    const r = await manager.set(bad, { who: "hypervisor", commandId: "c5", dryRun: false });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe("ConfigInvalid");
    const problems = r.error.details?.problems as { path: string; message: string }[];
    expect(problems.map((p) => p.path).sort()).toEqual(
      [
        "drivers[0].transport.port",
        "drivers[1].devices[0].points[0].address",
        "gateway.name",
        "state_dir",
        "uplink.keepalive",
        "uplink.url",
      ].sort(),
    );
    expect(problems.find((p) => p.path === "uplink.keepalive")?.message).toMatch(
      /did you mean "keepalive_s"/,
    );
    expect(host.applied).toHaveLength(0);
    expect(versions.list()).toHaveLength(1);
    expect(audit.list()[0]).toMatchObject({
      command: "config/set",
      outcome: "refused",
      code: "ConfigInvalid",
    });
  });

  it("restarts only the changed driver and records the version", async () => {
    const next = rawConfig([bus("a", 5020), bus("b", 5021, 80), bus("c", 5022)]);
    const r = await manager.set(next, { who: "hypervisor", commandId: "c1", dryRun: false });
    expect(r).toMatchObject({
      ok: true,
      result: { applied: true, restarted: ["b"], started: ["c"], stopped: [], pending_restart: [] },
    });
    if (r.ok) expect(resultSchemas["config/set"].safeParse(r.result).success).toBe(true);
    expect(host.applied).toHaveLength(1);
    const active = versions.active()!;
    expect(active).toMatchObject({
      source: "remote",
      who: "hypervisor",
      commandId: "c1",
      fileHash: "file-hash-1",
      status: "active",
    });
    expect(manager.get()).toMatchObject({
      version: active.version,
      source: "remote",
      who: "hypervisor",
    });
    // A repeated id returns the stored response and applies nothing.
    const again = await manager.set(next, { who: "hypervisor", commandId: "c1", dryRun: false });
    expect(again).toMatchObject({ ok: true, duplicate: true });
    expect(host.applied).toHaveLength(1);
  });

  it("rolls back when a changed driver does not come up within the window", async () => {
    const before = host.cfg;
    host.failing.add("b");
    const r = await manager.set(rawConfig([bus("a", 5020), bus("b", 1)]), {
      who: "hypervisor",
      commandId: "c2",
      dryRun: false,
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.message).toMatch(
      /rolled back: driver "b" is not running \(port \/dev\/ttyNOPE missing\)/,
    );
    expect(host.applied.map((a) => a.plan.restart)).toEqual([["b"], ["b"]]);
    expect(host.cfg).toBe(before);
    expect(versions.list()[0]).toMatchObject({ status: "rolled_back", who: "hypervisor" });
    expect(versions.active()?.source).toBe("file");
    expect(audit.list()[0]).toMatchObject({ command: "config/set", outcome: "failed" });
  });

  it("validates without applying on dry_run, and keeps redacted secrets", async () => {
    const got = manager.get();
    expect((got.config.uplink as Record<string, unknown>).password).toBe("${MQTT_PASS}");
    const shown = redactSecrets({
      uplink: { password: "literal" },
      x: [{ id: "d", app_key: "00aa" }],
    }) as Record<string, never>;
    expect(shown).toEqual({ uplink: { password: REDACTED }, x: [{ id: "d", app_key: REDACTED }] });
    expect(
      restoreRedacted(
        { x: [{ id: "e" }, { id: "d", app_key: REDACTED }] },
        { x: [{ id: "d", app_key: "00aa" }] },
      ),
    ).toEqual({
      x: [{ id: "e" }, { id: "d", app_key: "00aa" }],
    });
    const r = await manager.set(rawConfig([bus("a", 5020)]), {
      who: "local",
      commandId: "d1",
      dryRun: true,
    });
    expect(r).toMatchObject({ ok: true, result: { applied: false, stopped: ["b"] } });
    expect(host.applied).toHaveLength(0);
  });

  it("keeps the box's local-only settings when the remote config leaves them out", async () => {
    const next = rawConfig([bus("a", 5020), bus("b", 5021, 90)]);
    delete next.state_dir;
    const r = await manager.set(next, { who: "hypervisor", commandId: "lo", dryRun: false });
    expect(r.ok).toBe(true);
    expect(host.cfg.state_dir).toBe("/var/lib/eclor-edge");
    expect(versions.active()?.config.state_dir).toBe("/var/lib/eclor-edge");
    const moved = await manager.set(
      { ...rawConfig(), gateway: { id: "gw-2" } },
      { who: "hypervisor", commandId: "lo2", dryRun: false },
    );
    expect(moved).toMatchObject({
      ok: false,
      error: {
        details: {
          problems: [
            { path: "gateway.id", message: expect.stringMatching(/cannot be changed remotely/) },
          ],
        },
      },
    });
  });

  it("refuses remote configuration when commands.remote_config is false, and a concurrent set", async () => {
    const off = new ConfigManager(
      {
        host,
        versions,
        journal: new Journal(tmp.db),
        audit,
        refs,
        fileHash: () => "h",
        filePath: null,
        rollbackWindowMs: 300,
        remoteAllowed: false,
        logger: silent,
      },
      rawConfig(),
    );
    expect(
      await off.set(rawConfig(), { who: "hypervisor", commandId: "off", dryRun: false }),
    ).toMatchObject({
      ok: false,
      error: { code: "CommandRefused", message: expect.stringMatching(/remote_config: false/) },
    });
    host.failing.add("b");
    const slow = manager.set(rawConfig([bus("a", 5020), bus("b", 9)]), {
      who: "hypervisor",
      commandId: "slow",
      dryRun: false,
    });
    const busy = await manager.set(rawConfig([bus("a", 5020), bus("b", 8)]), {
      who: "hypervisor",
      commandId: "busy",
      dryRun: false,
    });
    expect(busy).toMatchObject({
      ok: false,
      error: {
        code: "CommandRefused",
        message: expect.stringMatching(/another configuration is being applied/),
      },
    });
    expect((await slow).ok).toBe(false);
  });

  it("plans uplink and other sections separately from drivers", () => {
    const a = validateConfigObject(rawConfig(), "a", refs);
    const b = validateConfigObject(
      { ...rawConfig(), log: { level: "debug" }, uplink: { url: "mqtt://10.0.0.1:1883" } },
      "b",
      refs,
    );
    expect(planChanges(a, b)).toEqual({
      start: [],
      stop: [],
      restart: [],
      uplink: true,
      pendingRestart: ["log"],
    });
  });
});

describe("precedence between the local file and remote configuration", () => {
  it("keeps the remote config while the file is unchanged, and lets an edited file win", () => {
    const v = new ConfigVersions(tmp.db);
    expect(v.active()).toMatchObject({ source: "file", version: 1 });
    v.add({
      ts: 1,
      who: "hypervisor",
      source: "remote",
      commandId: "c",
      fileHash: "file-hash-1",
      config: { remote: true },
      status: "active",
      detail: null,
    });
    const same = chooseStartupConfig(v, { raw: { file: true }, hash: "file-hash-1" });
    expect(same).toMatchObject({ source: "remote", raw: { remote: true } });
    const edited = chooseStartupConfig(v, { raw: { file: true }, hash: sha256("edited") });
    expect(edited).toMatchObject({ source: "file", raw: { file: true } });
    expect(edited.reason).toMatch(
      /the local file changed since remote configuration v2 was applied: the file wins/,
    );
    expect(v.active()).toMatchObject({ source: "file", version: 3, who: "local" });
    // Unchanged file on the next start: no new version.
    chooseStartupConfig(v, { raw: { file: true }, hash: sha256("edited") });
    expect(v.list()).toHaveLength(3);
  });
});
