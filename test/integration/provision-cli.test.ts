/**
 * The installer's and the platform's command lines, end to end as separate processes:
 * `sim enroll-bundle` issues a bundle, `sim enroll` serves, `provision` enrols and reports;
 * bad bundles and refusals are clear on the console with the contract's exit codes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigFile } from "../../config/load.js";
import { waitFor } from "../helpers/ports.js";
import { ENROL_PASSWORD, ENROL_USER, Platform } from "./provision-fixture.js";

const main = fileURLToPath(new URL("../../dist/agent/main.js", import.meta.url));
let platform: Platform;
let work: string;
let service: ChildProcess | undefined;
let serviceLog = "";

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [main, ...args], {
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("exit", (code) => resolve({ code, out, err }));
  });
}

beforeAll(async () => {
  platform = await Platform.start({ service: false });
  work = mkdtempSync(join(tmpdir(), "eclor-prov-cli-"));
  mkdirSync(join(work, "configs"));
  writeFileSync(join(work, "configs", "default.yaml"), "version: 1\nstore:\n  history_days: 7\n");
  service = spawn(
    process.execPath,
    [
      main,
      "sim",
      "enroll",
      "--ca-key",
      platform.ca.key,
      "--ca-cert",
      platform.ca.cert,
      "--url",
      platform.mtlsUrl,
      "--cert",
      platform.platformId.cert,
      "--key",
      platform.platformId.key,
      "--registry",
      join(work, "registry.json"),
      "--config-dir",
      join(work, "configs"),
      "--validity",
      "30d",
    ],
    { env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  service.stdout!.on("data", (d: Buffer) => (serviceLog += d.toString()));
  service.stderr!.on("data", (d: Buffer) => (serviceLog += d.toString()));
  await waitFor(() => serviceLog.includes("enrolment service ready"), 60_000, "sim enroll ready");
}, 120_000);

afterAll(async () => {
  if (service && service.exitCode === null) {
    const s = service;
    await new Promise<void>((r) => {
      s.once("exit", () => r());
      s.kill("SIGTERM");
    });
  }
  await platform?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function issue(gw: string): Promise<string> {
  const out = join(work, `${gw}.yaml`);
  const r = await cli([
    "sim",
    "enroll-bundle",
    "--gateway",
    gw,
    "--commune",
    "57720",
    "--url",
    platform.mtlsUrl,
    "--enrolment-url",
    platform.enrolUrl,
    "--ca-cert",
    platform.ca.cert,
    "--registry",
    join(work, "registry.json"),
    "--ttl",
    "1h",
    "--username",
    ENROL_USER,
    "--password",
    ENROL_PASSWORD,
    "--out",
    out,
  ]);
  expect(r.code, r.err).toBe(0);
  return out;
}

describe("eclor-edge provision / sim enroll", { timeout: 90_000 }, () => {
  it("a bad bundle: every problem with its path, exit 2, nothing written", async () => {
    const bad = join(work, "bad.yaml");
    writeFileSync(
      bad,
      "version: 1\ngateway:\n  id: gw 1\nplatform:\n  url: mqtt://x:1883\n  ca: nope\nenrolment:\n  expires: soon\n",
    );
    const state = join(work, "bad-state");
    const r = await cli(["provision", "--bundle", bad, "--state-dir", state]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/EE0701 .*bad\.yaml: 5 problems/);
    for (const path of [
      "gateway.id",
      "gateway.commune",
      "platform.url",
      "platform.ca",
      "enrolment.expires",
    ])
      expect(r.err).toContain(`  ${path}: `);
    expect(existsSync(join(state, "provision", "key.pem"))).toBe(false);
  });

  it("enrols end to end, prints each step, installs the initial configuration, reports the status", async () => {
    const bundle = await issue("gw-cli-01");
    const check = await cli(["provision", "--bundle", bundle, "--check"]);
    expect(check.code).toBe(0);
    expect(check.out).toMatch(/ok .*gateway gw-cli-01, token valid until/);
    const state = join(work, "state-01");
    const cfgOut = join(work, "config.yaml");
    const r = await cli([
      "provision",
      "--bundle",
      bundle,
      "--state-dir",
      state,
      "--config-out",
      cfgOut,
      "--timeout",
      "15s",
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/generated the gateway's private key \(it never leaves this box\)/);
    expect(r.err).toMatch(/sending the enrolment request/);
    expect(r.out).toMatch(/enrolled as gw-cli-01: certificate serial [0-9A-F]+, valid until/);
    const cfg = loadConfigFile(cfgOut);
    expect(cfg.gateway.id).toBe("gw-cli-01");
    expect(cfg.store.history_days).toBe(7);
    expect(cfg.provisioning).toBeDefined();
    expect(parse(readFileSync(bundle, "utf8")).enrolment.token).toBeUndefined();
    const st = await cli(["provision", "--status", "--state-dir", state]);
    expect(st.out).toMatch(/^enrolled as gw-cli-01, certificate valid until /);
    const js = JSON.parse(
      (await cli(["provision", "--status", "--state-dir", state, "--json"])).out,
    );
    expect(js).toMatchObject({ status: "enrolled", step: "done", gateway: "gw-cli-01" });
    // Running it again is harmless: already enrolled.
    expect((await cli(["provision", "--bundle", bundle, "--state-dir", state])).code).toBe(0);
    // Renewal by hand works too.
    const rn = await cli(["provision", "--renew", "--state-dir", state, "--timeout", "15s"]);
    expect(rn.code, rn.err).toBe(0);
    expect(rn.out).toMatch(/renewed: certificate valid until/);
  }, 180_000); // seven CLI processes; slow only on a loaded machine

  it("a refusal is clear on the console (exit 1) and in --status", async () => {
    const bundle = await issue("gw-cli-02");
    const b = parse(readFileSync(bundle, "utf8"));
    b.enrolment.token = "this-token-was-never-issued";
    writeFileSync(bundle, stringify(b));
    const state = join(work, "state-02");
    const r = await cli([
      "provision",
      "--bundle",
      bundle,
      "--state-dir",
      state,
      "--timeout",
      "15s",
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /error: EE0702 the platform refused the enrolment of "gw-cli-02" \(token_unknown\): enrolment token unknown to the platform — ask the platform for a new bundle/,
    );
    const st = await cli(["provision", "--status", "--state-dir", state]);
    expect(st.out).toMatch(/^enrolment refused: the platform refused .*token_unknown/);
    expect(existsSync(join(state, "provision", "cert.pem"))).toBe(false);
  }, 60_000);
});
