/**
 * The health model end to end (issues 13.2 and 15.3): the daemon (`eclor-edge run`) against a
 * real Mosquitto, checked from the three places that read it — `eclor-edge status` (its exit
 * code is the container HEALTHCHECK), the retained `state` message and the MQTT `status`
 * command. Two faults: drivers that cannot start (a LoRaWAN codec file that does not exist, a
 * TIC serial port that does not exist), and a store database file that is corrupt.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { statusViewSchema } from "../../agent/health/schema.js";
import { statePayloadSchema } from "../../agent/uplink/payloads.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { Hypervisor } from "./commands-fixtures.js";
import { Daemon, cli } from "./health-fixtures.js";

let broker: Mosquitto;
const dirs: string[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
}, 30_000);
afterAll(async () => {
  await broker?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(gw: string, drivers: string): { dir: string; config: string; sock: string } {
  const dir = mkdtempSync(join(tmpdir(), "eclor-health-"));
  dirs.push(dir);
  const sock = join(dir, "control.sock");
  const config = join(dir, "config.yaml");
  writeFileSync(
    config,
    [
      "version: 1",
      `gateway: { id: ${gw} }`,
      `state_dir: ${join(dir, "state")}`,
      `uplink: { url: "${broker.url}", reconnect_min_ms: 200 }`,
      `control: { socket: ${sock} }`,
      "log: { level: warn }",
      drivers,
    ].join("\n"),
  );
  return { dir, config, sock };
}

type State = ReturnType<typeof statePayloadSchema.parse>;
const lastState = (hv: Hypervisor, gw: string): State | undefined => {
  const m = hv.received.filter((x) => x.topic === `eclor/v1/${gw}/state`).at(-1);
  return m ? statePayloadSchema.parse(m.body) : undefined;
};

describe("a driver that cannot start", () => {
  const gw = "health-degraded";
  let daemon: Daemon;
  let env: ReturnType<typeof setup>;
  let hv: Hypervisor;

  beforeAll(async () => {
    env = setup(
      gw,
      `drivers:
  - id: capteurs-lora
    driver: lorawan
    listen: { host: 127.0.0.1, port: 0 }
    profiles:
      co2: { codec: /nonexistent/eclor-codecs/am103.js, points: [ { id: co2, unit: ppm } ] }
    devices:
      - id: co2-ecole
        dev_eui: "24e124707c481234"
        activation: { type: abp, dev_addr: "01a2b3c4", nwk_s_key: "000102030405060708090a0b0c0d0e0f", app_s_key: "000102030405060708090a0b0c0d0e0f" }
        profile: co2
  - id: linky
    driver: tic
    path: /dev/ttyECLOR-NOPE
    devices: [ { id: compteur } ]
`,
    );
    hv = await Hypervisor.connect(broker.url, gw);
    daemon = Daemon.start(env.config);
    await hv.waitReady();
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    await hv?.close();
  });

  it("eclor-edge status exits 1 and names each failing driver in plain words", async () => {
    const r = await waitFor(
      async () => {
        const x = await cli(["status"], env.sock);
        return x.stdout.includes("linky (tic) FAILED") ? x : undefined;
      },
      30_000,
      "status to show the TIC driver failed",
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("Health   DEGRADED");
    expect(r.stdout).toMatch(
      /driver "capteurs-lora" \(lorawan\) failed: EE0401 codec "\/nonexistent\/eclor-codecs\/am103\.js" cannot be read .*no such file/,
    );
    expect(r.stdout).toMatch(
      /driver "linky" \(tic\) failed: no device answers: cannot open \/dev\/ttyECLOR-NOPE/,
    );

    const j = await cli(["status", "--json"], env.sock);
    expect(j.code).toBe(1); // the container HEALTHCHECK runs exactly this
    const view = statusViewSchema.parse(JSON.parse(j.stdout));
    expect(view.status).toBe("degraded");
    expect(view.store.writable).toBe(true);
    expect(view.uplink.connected).toBe(true);
    expect(view.drivers.map((d) => [d.id, d.state])).toEqual([
      ["capteurs-lora", "failed"],
      ["linky", "failed"],
    ]);
  });

  it("the retained state says degraded, with the drivers named", async () => {
    const st = await waitFor(
      () => {
        const s = lastState(hv, gw);
        return s?.reasons?.some((x) => x.driver === "linky") ? s : undefined;
      },
      30_000,
      "a state naming the TIC driver",
    );
    expect(st.online).toBe(true);
    expect(st.status).toBe("degraded");
    expect(st.reasons!.map((x) => [x.component, x.driver, x.severity])).toEqual([
      ["driver", "capteurs-lora", "degraded"],
      ["driver", "linky", "degraded"],
    ]);
    expect(st.reasons![0]!.message).toContain("cannot be read");
  });

  it("the MQTT status command answers the same view", async () => {
    const r = await hv.request("status", { id: "st-1" });
    expect(r.ok).toBe(true);
    const view = statusViewSchema.parse(r.result);
    expect(view.status).toBe("degraded");
    expect(view.reasons.filter((x) => x.component === "driver").map((x) => x.driver)).toEqual([
      "capteurs-lora",
      "linky",
    ]);
  });
});

describe("a corrupt store database (issue 15.3)", () => {
  const gw = "health-corrupt";
  let daemon: Daemon;
  let env: ReturnType<typeof setup>;
  let hv: Hypervisor;

  beforeAll(async () => {
    env = setup(gw, "");
    mkdirSync(join(env.dir, "state"), { recursive: true });
    // Not a database: what a torn SD card write or a stray copy leaves behind.
    writeFileSync(join(env.dir, "state", "store.db"), Buffer.alloc(8192, 0x5a));
    hv = await Hypervisor.connect(broker.url, gw);
    daemon = Daemon.start(env.config);
    await hv.waitReady();
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    await hv?.close();
  });

  it("ping and status answer without the store; commands that need it say why", async () => {
    const ping = await hv.request("ping", { id: "p-1" });
    expect(ping).toMatchObject({ id: "p-1", ok: true, result: { pong: true } });
    const st = await hv.request("status", { id: "s-1" });
    expect(st.ok).toBe(true);
    const view = statusViewSchema.parse(st.result);
    expect(view.status).toBe("failed");
    expect(view.store.writable).toBe(false);
    expect(view.reasons[0]).toMatchObject({ component: "store", severity: "failed" });
    expect(view.reasons[0]!.message).toMatch(/store cannot be written: .*store\.db/);
    // The store's own error, more precise than "unavailable".
    const w = await hv.request("history", { id: "h-1", from: 0, to: 1 });
    expect(w).toMatchObject({ ok: false, error: { code: "StoreCorrupt" } });
    const c = await hv.request("config/get", { id: "c-1" });
    expect(c).toMatchObject({ ok: false, error: { code: "StoreUnavailable" } });
    expect(c.error!.message).toContain("ping, status and resync still answer");
  });

  it("the retained state, published outside the outbox, says failed with the store's error", async () => {
    const s = await waitFor(() => lastState(hv, gw), 10_000, "a state message");
    expect(s.online).toBe(true);
    expect(s.status).toBe("failed");
    expect(s.reasons![0]).toMatchObject({ component: "store", severity: "failed" });
    expect(s.reasons![0]!.message).toContain(join(env.dir, "state", "store.db"));
  });

  it("eclor-edge status exits 1 with the store's problem", async () => {
    const r = await cli(["status"], env.sock);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("Health   FAILED");
    expect(r.stdout).toMatch(/the store cannot be written: .*store\.db/);
  });
});

describe("a store that stops taking writes while the agent runs (issue 15.3)", () => {
  const gw = "health-unwritable";
  let daemon: Daemon;
  let env: ReturnType<typeof setup>;
  let hv: Hypervisor;

  beforeAll(async () => {
    env = setup(gw, "");
    hv = await Hypervisor.connect(broker.url, gw);
    daemon = Daemon.start(env.config);
    await hv.waitReady();
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    await hv?.close();
  });

  it("the retained state turns from ok to failed, and ping still answers", async () => {
    await waitFor(() => lastState(hv, gw)?.status === "ok", 20_000, "an ok state");
    // Every write to a file fails with EFBIG from now on (the database, its WAL): what a device
    // that went read-only or full looks like to SQLite, without touching the machine's disks.
    execFileSync("prlimit", ["--pid", String(daemon.pid), "--fsize=0:unlimited"]);
    const s = await waitFor(
      () => {
        const st = lastState(hv, gw);
        return st?.status === "failed" ? st : undefined;
      },
      60_000,
      "a failed state",
    );
    expect(s.online).toBe(true);
    expect(s.reasons![0]).toMatchObject({ component: "store", severity: "failed" });
    expect(s.reasons![0]!.message).toMatch(/the store cannot be written: write probe failed/);
    const ping = await hv.request("ping", { id: "p-2" });
    expect(ping.ok).toBe(true);
  }, 90_000);
});
