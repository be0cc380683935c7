/**
 * mTLS against a real Mosquitto with `require_certificate true`, certificates made with openssl
 * in the test: a gateway with a certificate from the broker's CA publishes; one with a
 * certificate from another CA gets a clear TLS error in its log and keeps buffering.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { createLogger } from "../../agent/log.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { hypervisor, testConfig, TestDriver } from "./uplink-fixtures.js";

let dir: string;
let broker: Mosquitto;
let url: string;
const cleanups: (() => Promise<void> | void)[] = [];

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** A CA, and leaf certificates signed by it (server with SAN 127.0.0.1, clients by CN). */
function makeCa(name: string): void {
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
  );
}
function makeLeaf(name: string, ca: string, server = false): void {
  openssl(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${name}`,
  );
  writeFileSync(
    join(dir, `${name}.ext`),
    server
      ? "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
      : "extendedKeyUsage=clientAuth\n",
  );
  openssl(
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "eclor-tls-"));
  makeCa("ca");
  makeCa("rogue-ca");
  makeLeaf("server", "ca", true);
  makeLeaf("gw-test", "ca");
  makeLeaf("hypervisor", "ca");
  makeLeaf("gw-rogue", "rogue-ca");
  // Mosquitto started as root drops to the `mosquitto` user before reading some files.
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  const port = await freePort();
  url = `mqtts://127.0.0.1:${port}`;
  broker = await Mosquitto.start({
    port,
    listenerConfig: `listener ${port} 127.0.0.1\nallow_anonymous true\ncafile ${dir}/ca.pem\ncertfile ${dir}/server.pem\nkeyfile ${dir}/server.key\nrequire_certificate true`,
  });
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await broker.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function agentWith(
  clientCert: string,
  log: string[],
): Promise<{ agent: Agent; driver: TestDriver }> {
  const config = testConfig(url, {
    uplink: {
      tls: {
        ca: join(dir, "ca.pem"),
        cert: join(dir, `${clientCert}.pem`),
        key: join(dir, `${clientCert}.key`),
      },
    },
  });
  const logger = createLogger({
    level: "info",
    destination: { write: (s: string) => void log.push(s) },
  });
  let driver!: TestDriver;
  const agent = new Agent(config, {
    logger,
    extraDrivers: [{ id: "t", create: (ctx) => (driver = new TestDriver("t", ctx)) }],
  });
  await agent.start();
  cleanups.push(async () => {
    await agent.stop();
    rmSync(config.state_dir, { recursive: true, force: true });
  });
  return { agent, driver };
}

it("a gateway with a certificate from the broker's CA publishes over mTLS", async () => {
  const tls = {
    ca: [Buffer.from(execFileSync("cat", [join(dir, "ca.pem")]))],
    cert: execFileSync("cat", [join(dir, "hypervisor.pem")]),
    key: execFileSync("cat", [join(dir, "hypervisor.key")]),
  };
  const { client, rx } = await hypervisor(url, "gw-test", tls);
  cleanups.push(() => client.endAsync(true));
  const { agent, driver } = await agentWith("gw-test", []);
  await agent.uplink.whenConnected();
  driver.produce(100);
  await waitFor(() => new Set(rx.telemetry).size === 100, 10_000, "telemetry over mTLS");
  expect(rx.invalid).toEqual([]);
});

it("a wrong client certificate gets a clear error in the log, and the agent keeps buffering", async () => {
  const log: string[] = [];
  const { agent, driver } = await agentWith("gw-rogue", log);
  await waitFor(() => log.some((l) => l.includes("EE0302")), 10_000, "a TLS error in the log");
  driver.produce(500);
  await waitFor(
    () => agent.store.stats().pending.live === 500,
    5000,
    "readings committed while refused",
  );
  const line = JSON.parse(log.find((l) => l.includes("EE0302"))!) as { msg: string };
  expect(line.msg).toMatch(/TLS|certificate/);
  expect(line.msg).toMatch(/uplink\.tls\.cert\/key/);
  expect(agent.uplink.connected).toBe(false);
  expect(agent.uplink.status().last_error).toMatch(/EE0302/);
  // Keeps retrying (with backoff) and keeps acquiring: nothing lost, nothing crashed.
  driver.produce(500);
  await waitFor(() => agent.store.stats().pending.live === 1000, 5000, "still buffering");
});

it("a missing key file is named in the error", async () => {
  const log: string[] = [];
  const config = testConfig(url, {
    uplink: {
      tls: { ca: join(dir, "ca.pem"), cert: join(dir, "gw-test.pem"), key: join(dir, "nope.key") },
    },
  });
  const logger = createLogger({
    level: "info",
    destination: { write: (s: string) => void log.push(s) },
  });
  const agent = new Agent(config, { logger });
  await agent.start();
  cleanups.push(async () => {
    await agent.stop();
    rmSync(config.state_dir, { recursive: true, force: true });
  });
  await waitFor(() => log.some((l) => l.includes("uplink.tls.key")), 5000, "the error");
  expect(log.find((l) => l.includes("uplink.tls.key"))).toMatch(
    /EE0302 uplink\.tls\.key: .*nope\.key does not exist/,
  );
});
