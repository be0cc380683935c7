/**
 * `eclor-edge run` with a bundle: the Agent enrols on first start (in the background — the
 * drivers already run and the store buffers), the uplink connects with the new certificate over
 * mTLS, and the telemetry stored meanwhile reaches the platform; the enrolment status is visible
 * in state.json. Real Mosquitto, ACLs of docs/provisioning/, reference enrolment service.
 */
import { rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { renderStatus } from "../../agent/cli/status.js";
import { AgentBackend } from "../../agent/control/agent-backend.js";
import { stopProvisioning } from "../../agent/provision/agent-step.js";
import { readProvisionStatus } from "../../agent/provision/state.js";
import { waitFor } from "../helpers/ports.js";
import { Platform } from "./provision-fixture.js";
import { TestDriver, hypervisor, testConfig, waitForCount } from "./uplink-fixtures.js";

let platform: Platform;
let work: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  // The enrolment service starts later: the agent must not wait for it to acquire.
  platform = await Platform.start({ service: false });
  work = mkdtempSync(join(tmpdir(), "eclor-prov-agent-"));
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await platform?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

it("a fresh box enrols on first start, then its telemetry (stored meanwhile) flows over mTLS", async () => {
  const gw = "gw-agent-01";
  const bundle = platform.writeBundle(work, gw);
  const config = testConfig(platform.mtlsUrl, {
    gateway: { id: gw },
    provisioning: { bundle, timeout: "2s", retry_max: "1s" },
  });
  cleanups.push(() => rmSync(config.state_dir, { recursive: true, force: true }));
  const hv = await hypervisor(platform.mtlsUrl, gw, platform.clientTls(platform.platformId));
  cleanups.push(() => hv.client.endAsync(true));

  let driver!: TestDriver;
  const agent = new Agent(config, {
    extraDrivers: [{ id: "t", create: (ctx) => (driver = new TestDriver("t", ctx)) }],
  });
  await agent.start();
  cleanups.push(async () => {
    stopProvisioning(config.state_dir);
    await agent.stop();
  });
  // Acquisition runs before enrolment: readings go to the store.
  driver.produce(50);
  await waitFor(() => agent.store.stats().buffered === 0, 5000, "readings committed");
  expect(agent.uplink.connected).toBe(false);
  expect(readProvisionStatus(config.state_dir).status).toBe("enrolling");
  // What `eclor-edge status` shows the installer meanwhile (the service is not up yet).
  const backend = new AgentBackend(agent, config);
  cleanups.push(() => backend.dispose());
  await waitFor(
    () => backend.status().provisioning?.summary.includes("attempt"),
    10_000,
    "a failed attempt in the status",
  );
  expect(backend.status().provisioning).toMatchObject({ status: "enrolling", attention: false });
  expect(backend.status().provisioning!.summary).toMatch(/^enrolling \(step \w+, attempt \d+\)/);
  expect(renderStatus(backend.status())).toMatch(/Enrolment +enrolling/);

  await platform.startService(86_400_000);
  await waitFor(
    () => readProvisionStatus(config.state_dir).status === "enrolled",
    20_000,
    "enrolment",
  );
  await waitFor(() => agent.uplink.connected, 20_000, "mTLS uplink");
  driver.produce(50);
  await waitForCount(hv.rx, 100, 20_000);
  expect(hv.rx.invalid).toEqual([]);
  const st = readProvisionStatus(config.state_dir);
  expect(st).toMatchObject({ status: "enrolled", gateway: gw });
  expect(st.renewal?.due_at).toBeTypeOf("string");
  expect(backend.status().provisioning).toMatchObject({ status: "enrolled", attention: false });
  expect(renderStatus(backend.status())).toMatch(
    /Enrolment +enrolled as gw-agent-01, certificate valid until/,
  );
}, 60_000);
