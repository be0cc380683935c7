/**
 * Store full during an outage: the oldest lowest-priority readings are dropped, and a gap event
 * with the exact count and seq range reaches the broker — nothing is silently lost.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { hypervisor, testConfig, TestDriver } from "./uplink-fixtures.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it("oldest lowest-priority readings dropped; the gap event with the exact count reaches the broker", async () => {
  const persist = mkdtempSync(join(tmpdir(), "eclor-persist-"));
  chmodSync(persist, 0o777);
  const broker = await Mosquitto.start({
    extraConfig: `persistence true\npersistence_location ${persist}/`,
  });
  cleanups.push(async () => {
    await broker.dispose();
    rmSync(persist, { recursive: true, force: true });
  });
  // The hypervisor's session exists before the outage, so the broker queues for it.
  const hv = await hypervisor(broker.url, "gw-test", { clientId: "hv-storefull" });
  cleanups.push(() => hv.client.endAsync(true));
  await hv.client.endAsync();
  await broker.stop();

  const config = testConfig(broker.url, {
    store: { max_bytes: 1_048_576, flush_count: 500 },
    uplink: { batch_size: 500 },
  });
  cleanups.push(() => rmSync(config.state_dir, { recursive: true, force: true }));
  let driver!: TestDriver;
  const agent = new Agent(config, {
    extraDrivers: [{ id: "t", create: (ctx) => (driver = new TestDriver("t", ctx)) }],
  });
  await agent.start();
  cleanups.push(() => agent.stop());

  const produced = 25_000; // ~2.5 MB of records into a 1 MiB store
  const old = Date.now() - 2 * 3_600_000; // the first 5000 are historical backfill
  driver.produce(5000, old);
  for (let i = 5000; i < produced; i += 500) {
    driver.produce(500);
    await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => agent.store.stats().buffered === 0, 5000, "all committed");
  const st = agent.store.stats();
  expect(st.bytes).toBeLessThanOrEqual(1_048_576);
  expect(st.dropped_total).toBeGreaterThan(5000);

  await broker.start();
  // Same client id: the persistent session the broker kept (and filled) during the outage.
  const { client, rx } = await hypervisor(broker.url, "gw-test", { clientId: "hv-storefull" });
  cleanups.push(() => client.endAsync(true));
  await waitFor(
    () => agent.store.stats().pending.live === 0 && agent.store.stats().pending.event === 0,
    15_000,
    "drained",
  );
  await waitFor(
    () => {
      const gaps = rx.events.filter((e) => e.type === "gap");
      const dropped = gaps.reduce((a, g) => a + (g.data!.count as number), 0);
      return new Set(rx.telemetry).size + dropped === produced;
    },
    30_000,
    "every reading either delivered or counted in a gap event",
  );

  const gaps = rx.events
    .filter((e) => e.type === "gap")
    .map((e) => e.data as { priority: string; count: number; first_seq: number; last_seq: number });
  // Backfill (lowest priority) went first, starting with the oldest.
  expect(gaps[0]).toMatchObject({ priority: "backfill", first_seq: 1 });
  expect(gaps.filter((g) => g.priority === "backfill").reduce((a, g) => a + g.count, 0)).toBe(5000);
  // Exactness: the delivered seqs and the gap ranges partition 1..produced.
  const delivered = new Set(rx.telemetry);
  let inGaps = 0;
  for (const g of gaps) {
    for (let s = g.first_seq; s <= g.last_seq; s++) {
      if (!delivered.has(s) && !rx.events.some((e) => e.seq === s)) inGaps++;
    }
  }
  expect(inGaps).toBe(gaps.reduce((a, g) => a + g.count, 0));
  // The newest readings survived.
  expect(delivered.has(produced)).toBe(true);
  expect(rx.invalid).toEqual([]);
});
