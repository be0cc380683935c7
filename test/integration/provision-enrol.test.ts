/**
 * First-boot enrolment against a real Mosquitto (TLS listeners, ACLs from docs/provisioning/) and
 * the reference enrolment service: key generated here, CSR with the gateway id, certificate
 * verified, switch to mTLS, telemetry flows, and a gateway cannot touch another's topics.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureEnrolled } from "../../agent/provision/enrol.js";
import type { EnrolledTls } from "../../agent/provision/enrolment.js";
import { provisionPaths } from "../../agent/provision/files.js";
import { readProvisionStatus } from "../../agent/provision/state.js";
import { validateConfigObject } from "../../config/load.js";
import { waitFor } from "../helpers/ports.js";
import { ENROL_PASSWORD, ENROL_USER, PREFIX, Platform } from "./provision-fixture.js";

let platform: Platform;
let work: string;

beforeAll(async () => {
  platform = await Platform.start({ service: false });
  const configDir = join(platform.dir, "configs");
  mkdirSync(configDir);
  writeFileSync(join(configDir, "default.yaml"), "version: 1\nlog:\n  level: debug\n");
  await platform.startService(2 * 86_400_000, configDir);
  work = mkdtempSync(join(tmpdir(), "eclor-prov-gw-"));
});

afterAll(async () => {
  await platform?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

function mtlsClient(tls: EnrolledTls, clientId = tls.gatewayId) {
  return mqtt.connectAsync(tls.url, {
    protocolVersion: 5,
    clientId,
    reconnectPeriod: 0,
    ca: readFileSync(tls.caPath),
    cert: readFileSync(tls.certPath),
    key: readFileSync(tls.keyPath),
  });
}

async function enrol(
  gw: string,
): Promise<{ tls: EnrolledTls; stateDir: string; bundlePath: string }> {
  const stateDir = join(work, gw);
  const bundlePath = platform.writeBundle(work, gw);
  const tls = await ensureEnrolled({
    stateDir,
    bundlePath,
    logger: platform.logger,
    maxAttempts: 1,
    timeoutMs: 10_000,
  });
  return { tls, stateDir, bundlePath };
}

describe("provisioning: first-boot enrolment", { timeout: 90_000 }, () => {
  let gw1: Awaited<ReturnType<typeof enrol>>;

  it("a fresh gateway enrols: key 0600 kept here, certificate for its id chaining to the CA, token deleted, configuration received", async () => {
    gw1 = await enrol("gw-volmerange-01");
    const p = provisionPaths(gw1.stateDir);
    expect(statSync(p.key).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(readFileSync(p.cert));
    expect(cert.subject).toBe("CN=gw-volmerange-01");
    expect(cert.verify(new X509Certificate(platform.ca.certPem).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(p.key)))).toBe(true);
    // The private key never left the box: the platform's registry only knows the public key.
    expect(readFileSync(join(platform.dir, "registry.json"), "utf8")).not.toContain("PRIVATE KEY");
    // Token deleted from the state copy and from the original bundle file.
    expect(parse(readFileSync(p.bundle, "utf8")).enrolment.token).toBeUndefined();
    expect(parse(readFileSync(gw1.bundlePath, "utf8")).enrolment.token).toBeUndefined();
    // The batch's shared enrolment password leaves the box with the token (issue 14.2).
    expect(readFileSync(p.bundle, "utf8")).not.toContain(ENROL_PASSWORD);
    expect(readFileSync(gw1.bundlePath, "utf8")).not.toContain(ENROL_PASSWORD);
    const status = readProvisionStatus(gw1.stateDir);
    expect(status).toMatchObject({ status: "enrolled", gateway: "gw-volmerange-01", step: "done" });
    expect(status.certificate?.notAfter).toBe(new Date(cert.validTo).toISOString());
    // Initial configuration: the platform's file completed with the box's id and mTLS files, valid.
    const cfg = validateConfigObject(parse(readFileSync(gw1.tls.configPath!, "utf8")), "initial", {
      env: {},
      baseDir: work,
    });
    expect(cfg.gateway.id).toBe("gw-volmerange-01");
    expect(cfg.log.level).toBe("debug");
    expect(cfg.uplink).toMatchObject({
      url: platform.mtlsUrl,
      tls: { cert: p.cert, key: p.key, ca: p.ca },
    });
  });

  it("enrolling again is a no-op (same certificate), and leaves a fresh bundle's token alone", async () => {
    const before = readFileSync(gw1.tls.certPath, "utf8");
    // The platform issues a new bundle for the same box (e.g. for a later re-enrolment).
    const fresh = platform.writeBundle(work, "gw-volmerange-01");
    const tls = await ensureEnrolled({
      stateDir: gw1.stateDir,
      bundlePath: fresh,
      logger: platform.logger,
      maxAttempts: 1,
    });
    expect(readFileSync(tls.certPath, "utf8")).toBe(before);
    expect(parse(readFileSync(fresh, "utf8")).enrolment.token).toBeTypeOf("string");
  });

  it("reconnects with mTLS and its telemetry flows to the platform", async () => {
    const plat = await platform.platformClient();
    const got: string[] = [];
    plat.on("message", (t, m) => got.push(`${t} ${m.toString()}`));
    await plat.subscribeAsync(`${PREFIX}/gw-volmerange-01/telemetry`, { qos: 1 });
    const gw = await mtlsClient(gw1.tls);
    const ack = await gw.publishAsync(`${PREFIX}/gw-volmerange-01/telemetry`, '{"seq":1}', {
      qos: 1,
    });
    expect((ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0).toBeLessThan(128);
    await waitFor(() => got.length === 1, 5000, "telemetry at the platform");
    expect(got[0]).toBe(`${PREFIX}/gw-volmerange-01/telemetry {"seq":1}`);
    await gw.endAsync();
    await plat.endAsync();
  });

  it("a second gateway cannot publish on the first one's topics, nor read them (ACL by certificate CN)", async () => {
    const gw2 = await enrol("gw-volmerange-02");
    const plat = await platform.platformClient();
    const got: string[] = [];
    plat.on("message", (t) => got.push(t));
    await plat.subscribeAsync(`${PREFIX}/#`, { qos: 1 });
    const c2 = await mtlsClient(gw2.tls);
    // The broker answers PUBACK "not authorized"; and on the same connection, a forged message
    // that got through would arrive before the legitimate one that follows it.
    await expect(
      c2.publishAsync(`${PREFIX}/gw-volmerange-01/telemetry`, "forged", { qos: 1 }),
    ).rejects.toThrow(/Not authorized/);
    await c2.publishAsync(`${PREFIX}/gw-volmerange-02/telemetry`, "own", { qos: 1 });
    await waitFor(
      () => got.includes(`${PREFIX}/gw-volmerange-02/telemetry`),
      5000,
      "own telemetry",
    );
    expect(got).not.toContain(`${PREFIX}/gw-volmerange-01/telemetry`);
    // Reading: Mosquitto grants the subscription but filters at delivery by the read ACL.
    const seen: string[] = [];
    c2.on("message", (t) => seen.push(t));
    await c2.subscribeAsync([`${PREFIX}/gw-volmerange-01/#`, `${PREFIX}/gw-volmerange-02/cmd/#`], {
      qos: 1,
    });
    await plat.publishAsync(`${PREFIX}/gw-volmerange-01/cmd/reboot`, "{}", { qos: 1 });
    await plat.publishAsync(`${PREFIX}/gw-volmerange-02/cmd/ping`, "{}", { qos: 1 });
    await waitFor(() => seen.includes(`${PREFIX}/gw-volmerange-02/cmd/ping`), 5000, "own command");
    expect(seen).not.toContain(`${PREFIX}/gw-volmerange-01/cmd/reboot`);
    await c2.endAsync();
    await plat.endAsync();
  });

  it("the enrolment identity reaches nothing but its own enrolment topics", async () => {
    const c = await mqtt.connectAsync(platform.enrolUrl, {
      protocolVersion: 5,
      clientId: "gw-volmerange-01",
      username: ENROL_USER,
      password: ENROL_PASSWORD,
      ca: platform.ca.certPem,
      reconnectPeriod: 0,
    });
    const plat = await platform.platformClient();
    const got: string[] = [];
    plat.on("message", (t) => got.push(t));
    await plat.subscribeAsync(`${PREFIX}/#`, { qos: 1 });
    await expect(
      c.publishAsync(`${PREFIX}/gw-volmerange-01/telemetry`, "forged", { qos: 1 }),
    ).rejects.toThrow(/Not authorized/);
    await c.publishAsync(`${PREFIX}/enroll/gw-volmerange-01/request`, "{}", { qos: 1 });
    await waitFor(
      () => got.includes(`${PREFIX}/enroll/gw-volmerange-01/request`),
      5000,
      "enrolment request",
    );
    expect(got).not.toContain(`${PREFIX}/gw-volmerange-01/telemetry`);
    const seen: string[] = [];
    c.on("message", (t) => seen.push(t));
    await c.subscribeAsync([`${PREFIX}/enroll/+/response`, `${PREFIX}/gw-volmerange-02/#`], {
      qos: 1,
    });
    await plat.publishAsync(`${PREFIX}/enroll/gw-volmerange-02/response`, "{}", { qos: 1 });
    await plat.publishAsync(`${PREFIX}/gw-volmerange-02/cmd/x`, "{}", { qos: 1 });
    await plat.publishAsync(`${PREFIX}/enroll/gw-volmerange-01/response`, "{}", { qos: 1 });
    await waitFor(
      () => seen.includes(`${PREFIX}/enroll/gw-volmerange-01/response`),
      5000,
      "own response",
    );
    expect(seen.filter((t) => !t.startsWith(`${PREFIX}/enroll/gw-volmerange-01/`))).toEqual([]);
    await c.endAsync();
    await plat.endAsync();
    // A client without the enrolment password is not let in at all.
    await expect(
      mqtt.connectAsync(platform.enrolUrl, {
        protocolVersion: 5,
        clientId: "x",
        username: ENROL_USER,
        password: "wrong",
        ca: platform.ca.certPem,
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
  });
});
