/**
 * mTLS against a real Mosquitto with `require_certificate true`, certificates made with openssl
 * in the test: a gateway with a certificate from the broker's CA publishes; one with a
 * certificate from another CA gets a clear TLS error in its log and keeps buffering.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { createLogger } from "../../agent/log.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { hypervisor, testConfig, TestDriver } from "./uplink-fixtures.js";
import { CLIENT_EXT, SERVER_EXT, makeCa, makeLeaf } from "../helpers/pki.js";

let dir: string;
let broker: Mosquitto;
let url: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "eclor-tls-"));
  const ca = makeCa(dir, "ca", "ec");
  const rogue = makeCa(dir, "rogue-ca", "ec");
  makeLeaf(dir, ca, "server", "server", SERVER_EXT, "ec");
  makeLeaf(dir, ca, "gw-test", "gw-test", CLIENT_EXT, "ec");
  makeLeaf(dir, ca, "hypervisor", "hypervisor", CLIENT_EXT, "ec");
  makeLeaf(dir, rogue, "gw-rogue", "gw-rogue", CLIENT_EXT, "ec");
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
