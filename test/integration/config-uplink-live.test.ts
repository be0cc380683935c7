/**
 * Remote configuration of the uplink, live, against two real Mosquitto brokers: a new broker that
 * cannot be reached is rolled back within `commands.rollback_window` (the answer comes from the
 * original broker), a reachable one is switched to (the answer and the telemetry come from the
 * new broker) — and in both cases every record committed meanwhile reaches the hypervisor: the
 * union of the seqs received is contiguous across the switch.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModbusSimulator, addSimDevice } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { AgentHarness, Hypervisor, baseConfig, type RunningAgent } from "./commands-fixtures.js";

const GW = "gw-uplink-live";
const WINDOW_MS = 4000;
let brokerA: Mosquitto;
let brokerB: Mosquitto;
let sim: ModbusSimulator;
let simPort: number;
let harness: AgentHarness;
let run: RunningAgent;
let hvA: Hypervisor;
let hvB: Hypervisor;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form test edits of a config object
type Loose = Record<string, any>;
const cfg = (url: string): Loose => {
  const c: Loose = baseConfig(GW, url, simPort, {
    commands: { rollback_window: `${WINDOW_MS}ms`, rate_limit: { burst: 20, per_minute: 600 } },
  });
  // Points without deadband or max_interval: every 200 ms poll is stored and sent.
  c.drivers[0].devices = [
    {
      id: "meter",
      unit_id: 5,
      points: [
        { id: "r0", table: "holding", address: 0 },
        { id: "r1", table: "holding", address: 1 },
      ],
    },
  ];
  return c;
};

beforeAll(async () => {
  [brokerA, brokerB] = await Promise.all([Mosquitto.start(), Mosquitto.start()]);
  sim = new ModbusSimulator();
  addSimDevice(sim, 5, "registers");
  simPort = await sim.listenTcp(0);
  harness = new AgentHarness(cfg(brokerA.url));
  run = await harness.start();
  hvA = await Hypervisor.connect(brokerA.url, GW);
  hvB = await Hypervisor.connect(brokerB.url, GW);
  await hvA.waitReady();
});

afterAll(async () => {
  await hvA?.close();
  await hvB?.close();
  await run?.stop();
  await sim?.close();
  await Promise.all([brokerA?.dispose(), brokerB?.dispose()]);
  harness?.dispose();
});

/** Seqs of the telemetry and events records received by these hypervisor clients. */
function seqs(...hvs: Hypervisor[]): Set<number> {
  const out = new Set<number>();
  for (const hv of hvs)
    for (const m of hv.received) {
      if (!/\/(telemetry|events)$/.test(m.topic)) continue;
      for (const r of (m.body as { records: { seq: number }[] }).records) out.add(r.seq);
    }
  return out;
}

/** The last seq committed now, once it (hence everything before it) has reached `hvs`. */
async function delivered(...hvs: Hypervisor[]): Promise<number> {
  run.agent.store.flush();
  const last = run.agent.store.stats().next_seq - 1;
  // A condition with a generous deadline: on a loaded machine the reconnection and the backlog
  // take longer, and only their completion matters.
  await waitFor(() => seqs(...hvs).has(last), 90_000, `seq ${last} at the hypervisor`);
  return last;
}

const isReply = (m: { topic: string; body: unknown }, id: string): boolean =>
  m.topic === `hv/replies/${GW}` && (m.body as { id?: unknown }).id === id;

function missing(got: Set<number>, from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s++) if (!got.has(s)) out.push(s);
  return out;
}

describe("config/set of the uplink, applied live", () => {
  it("a broker that cannot be reached: rolled back within the window, answered by the original broker, no seq gap", async () => {
    const s0 = await delivered(hvA);
    const dead = await freePort(); // nothing listens there: ECONNREFUSED at every attempt
    const bad = cfg(`mqtt://127.0.0.1:${dead}`);
    const t0 = Date.now();
    const r = await hvA.request(
      "config/set",
      { id: "up-dead", config: bad },
      { timeoutMs: 90_000 },
    );
    const took = Date.now() - t0;
    // Readings were committed while the uplink was away (they must all arrive below).
    run.agent.store.flush();
    const during = run.agent.store.stats().next_seq - 1;
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe("CommandFailed");
    expect(r.error?.message).toMatch(
      new RegExp(
        `rolled back: the uplink did not reconnect to the broker \\(EE0301 cannot connect to mqtt://127\\.0\\.0\\.1:${dead}: .*ECONNREFUSED.*\\) within 4 s`,
      ),
    );
    expect(r.error?.details).toMatchObject({ rolled_back: true, plan: { uplink: true } });
    // Not rolled back before the window ended (an upper bound would time this machine's load;
    // the message above says the window was what gave up).
    expect(took).toBeGreaterThanOrEqual(WINDOW_MS - 100);
    expect(run.agent.uplink.connected).toBe(true);
    expect(run.agent.uplink.status().url).toBe(brokerA.url);
    const get = await hvA.request("config/get", { id: "up-dead-get" });
    expect(get.result).toMatchObject({ source: "file" });
    expect((get.result as Loose).config.uplink.url).toBe(brokerA.url);
    expect(run.cp.versions.list()[0]).toMatchObject({
      status: "rolled_back",
      commandId: "up-dead",
    });
    expect(run.cp.audit.list(1)[0]).toMatchObject({ command: "config/set", outcome: "failed" });
    // The failure also went upstream as an event, on the original broker.
    const ev = await waitFor(
      () =>
        hvA.received
          .filter((m) => m.topic.endsWith("/events"))
          .flatMap((m) => (m.body as { records: Loose[] }).records)
          .find((e) => e.type === "config_rolled_back"),
      60_000,
      "the config_rolled_back event",
    );
    expect(ev).toMatchObject({
      severity: "error",
      data: { command_id: "up-dead", rolled_back_ok: true },
    });
    // Readings kept flowing: those acquired while the uplink was away arrive, none is missing.
    const s1 = await delivered(hvA);
    expect(during).toBeGreaterThan(s0);
    expect(s1).toBeGreaterThanOrEqual(during);
    expect(missing(seqs(hvA), s0, s1)).toEqual([]);
  }, 240_000);

  it("a reachable broker: applied, answered by the new broker, telemetry goes there, no seq gap", async () => {
    const s0 = await delivered(hvA);
    const next = cfg(brokerB.url);
    next.uplink.keepalive_s = 20;
    // The request goes to the current broker (A); its answer will come from the new one (B).
    const corr = randomBytes(8);
    await hvA.client.publishAsync(
      `eclor/v1/${GW}/cmd/config/set`,
      JSON.stringify({ id: "up-b", config: next }),
      { qos: 1, properties: { responseTopic: `hv/replies/${GW}`, correlationData: corr } },
    );
    const answer = await waitFor(
      () => hvB.received.find((m) => isReply(m, "up-b")),
      60_000,
      "the config/set response on the new broker",
    );
    expect(answer.body).toMatchObject({
      id: "up-b",
      ok: true,
      result: { applied: true, restarted: [], reconfigured: [], pending_restart: [] },
    });
    expect(hvA.received.some((m) => isReply(m, "up-b"))).toBe(false);
    expect(run.agent.uplink.status().url).toBe(brokerB.url);
    // The old broker saw a clean goodbye; the new one has the gateway online.
    const statesA = hvA.received.filter((m) => m.topic === `eclor/v1/${GW}/state`);
    expect(statesA.at(-1)?.body).toMatchObject({ online: false, reason: "shutdown" });
    await waitFor(
      () =>
        hvB.received.some(
          (m) => m.topic === `eclor/v1/${GW}/state` && (m.body as Loose).online === true,
        ),
      60_000,
      "state online on the new broker",
    );
    // Telemetry now arrives at B; across the switch nothing is missing (A then B).
    await waitFor(
      () => [...seqs(hvB)].filter((s) => s > s0).length > 10,
      60_000,
      "telemetry on the new broker",
    );
    const s1 = await delivered(hvB);
    expect(missing(seqs(hvA, hvB), s0, s1)).toEqual([]);
    // Commands now come through B, with the applied version.
    const get = await hvB.request("config/get", { id: "up-b-get" });
    expect(get.result).toMatchObject({ source: "remote", who: "hypervisor" });
    expect((get.result as Loose).config.uplink.url).toBe(brokerB.url);
  }, 240_000);
});
