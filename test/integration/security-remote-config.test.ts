/**
 * Issue 14.1: a remote configuration (config/set) is plain data. Tried against the real daemon,
 * a real Mosquitto and the Modbus simulator: `file:` and `${…}` in a remote config are refused
 * without echoing or mapping anything of the box, a secret the local file exports is usable by
 * name only and never comes back (responses, retained inventory, config/get, stored versions),
 * and every refusal is audited.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModbusSimulator, addSimDevice } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { Hypervisor, baseConfig } from "./commands-fixtures.js";
import { Daemon } from "./security-daemon.js";

const GW = "gw-sec-cfg";
const KEY = "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-----END PRIVATE KEY-----";
const MQTT_PASS = "mqtt-pass-4f9a1c";
const HOME = "/home/very-private-home-dir";
let broker: Mosquitto;
let sim: ModbusSimulator;
let hv: Hypervisor;
let daemon: Daemon;
let local: Record<string, unknown>;

/** Everything the hypervisor received, as text (responses, retained inventory, state, events). */
const seen = () => JSON.stringify(hv.received);

beforeAll(async () => {
  broker = await Mosquitto.start();
  sim = new ModbusSimulator();
  addSimDevice(sim, 3, "dali-gateway");
  const port = await sim.listenTcp(0);
  local = { ...baseConfig(GW, broker.url, port) };
  daemon = new Daemon(GW, local);
  writeFileSync(join(daemon.dir, "key.pem"), `${KEY}\n`);
  writeFileSync(join(daemon.dir, "mqtt-pass"), `${MQTT_PASS}\n`);
  local = { ...local, secrets: { mqtt: "file:mqtt-pass" } };
  daemon.writeConfig(local);
  hv = await Hypervisor.connect(broker.url, GW);
  await daemon.start(hv, { HOME, ECLOR_SECRET_ENV: "env-secret-value" });
}, 90_000);

afterAll(async () => {
  await hv?.close();
  await daemon?.dispose();
  await sim?.close();
  await broker?.dispose();
});

function remote(mutate: (c: Record<string, unknown>) => void): Record<string, unknown> {
  const c = structuredClone(local);
  delete c.secrets;
  mutate(c);
  return c;
}
const driver0 = (c: Record<string, unknown>) =>
  (c.drivers as Record<string, unknown>[])[0] as Record<string, Record<string, unknown>>;

describe("config/set is plain data (issue 14.1)", () => {
  it("refuses file: references without echoing the file or mapping the file system", async () => {
    for (const [i, ref] of [
      `file:${join(daemon.dir, "key.pem")}`,
      "file:key.pem",
      "file:/nonexistent/dir/secret",
    ].entries()) {
      const r = await hv.request("config/set", {
        id: `file-${i}`,
        config: remote((c) => (driver0(c).transport!.port = ref)),
      });
      expect(r).toMatchObject({ ok: false, error: { code: "ConfigInvalid" } });
      const text = JSON.stringify(r);
      expect(text).not.toContain("BEGIN PRIVATE KEY");
      expect(text).not.toMatch(/does not exist|not readable|ENOENT/);
      expect(text).toMatch(/not expanded in a remote configuration/);
    }
    expect(seen()).not.toContain("BEGIN PRIVATE KEY");
    const audit = daemon.query<{ outcome: string; command_id: string }>(
      "SELECT outcome, command_id FROM cmd_audit WHERE command = 'config/set' AND command_id LIKE 'file-%'",
    );
    expect(audit.map((a) => a.outcome)).toEqual(["refused", "refused", "refused"]);
  }, 60_000);

  it("refuses ${ENV} in text fields: nothing reaches the retained inventory", async () => {
    const r = await hv.request("config/set", {
      id: "env-1",
      config: remote((c) => {
        (c.gateway as Record<string, unknown>).name = "Mairie ${HOME}";
        driver0(c).devices = [
          ...(driver0(c).devices as unknown as unknown[]),
          {
            id: "extra",
            unit_id: 3,
            points: [
              {
                id: "p",
                table: "holding",
                address: 90,
                description: "${HOME} ${PATH} ${ECLOR_SECRET_ENV}",
              },
            ],
          },
        ] as unknown as Record<string, unknown>;
      }),
    });
    expect(r).toMatchObject({ ok: false, error: { code: "ConfigInvalid" } });
    const paths = (r.error?.details?.problems as { path: string }[]).map((p) => p.path).sort();
    expect(paths).toEqual(["drivers[0].devices[1].points[0].description", "gateway.name"]);
    // A resync republishes the inventory: still no expanded value anywhere.
    await hv.request("resync", { id: "env-resync" });
    await waitFor(
      () => hv.received.filter((m) => m.topic.endsWith("/inventory")).length >= 2,
      20_000,
      "inventory republished",
    );
    expect(seen()).not.toContain(HOME);
    expect(seen()).not.toContain("env-secret-value");
    expect(seen()).not.toContain(process.env.PATH!);
  }, 60_000);

  it("uses a secret the local file exports by name, and never shows it back", async () => {
    // Not in a text field: that would publish it.
    const misplaced = await hv.request("config/set", {
      id: "sec-0",
      config: remote((c) => ((c.gateway as Record<string, unknown>).name = "secret:mqtt")),
    });
    expect(misplaced).toMatchObject({ ok: false, error: { code: "ConfigInvalid" } });
    expect(JSON.stringify(misplaced)).toMatch(/only in a secret field/);
    const unknown = await hv.request("config/set", {
      id: "sec-1",
      config: remote((c) => ((c.uplink as Record<string, unknown>).password = "secret:nope")),
    });
    expect(unknown.error?.message).toMatch(/exports no secret "nope" \(exported: mqtt\)/);

    const ok = await hv.request("config/set", {
      id: "sec-2",
      config: remote((c) => {
        Object.assign(c.uplink as Record<string, unknown>, {
          username: GW,
          password: "secret:mqtt",
        });
      }),
    });
    expect(ok).toMatchObject({ ok: true, result: { applied: true } });
    const got = await hv.request("config/get", { id: "sec-get" });
    const cfg = got.result as { config: { uplink: { password: string }; secrets: unknown } };
    expect(cfg.config.uplink.password).toBe("secret:mqtt");
    expect(cfg.config.secrets).toEqual({ mqtt: "file:mqtt-pass" });
    // A literal secret sent remotely is stored redacted in the versions table.
    const lit = await hv.request("config/set", {
      id: "sec-3",
      config: remote((c) => {
        Object.assign(c.uplink as Record<string, unknown>, {
          username: GW,
          password: "literal-pw-77",
        });
      }),
    });
    expect(lit).toMatchObject({ ok: true });
    const rows = daemon.query<{ config: string }>("SELECT config FROM config_versions");
    expect(JSON.stringify(rows)).not.toContain(MQTT_PASS);
    expect(JSON.stringify(rows)).not.toContain("literal-pw-77");
    expect(seen()).not.toContain(MQTT_PASS);
    expect(seen()).not.toContain("literal-pw-77");
    // The stored version restarts with its secrets put back.
    await daemon.stop();
    await daemon.start(hv, { HOME });
    const after = await hv.request("config/get", { id: "sec-get-2" });
    expect(after.result).toMatchObject({
      source: "remote",
      config: { uplink: { password: "[redacted]" } },
    });
  }, 120_000);

  it("cuts long values in its error messages", async () => {
    const long = "x".repeat(5000);
    const r = await hv.request("config/set", {
      id: "long-1",
      config: remote((c) => {
        (c.gateway as Record<string, unknown>).commune = 7;
        (driver0(c) as Record<string, unknown>).poll_interval = long;
      }),
    });
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r.error?.message).length).toBeLessThan(2000);
    expect(r.error?.message).not.toContain("x".repeat(100));
  }, 30_000);
});
