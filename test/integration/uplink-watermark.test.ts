/**
 * The drainer's contiguous-prefix watermark with PUBACKs out of order (issue 19 item 9): a broker
 * (the raw MQTT responder of test/helpers/mute-broker.ts) withholds the PUBACK of one batch and
 * acknowledges the later ones. The priority's watermark must stay below the unacknowledged batch
 * — then, after the link is lost, the agent resumes exactly at its first seq (nothing skipped),
 * and once the withheld PUBACK arrives the watermark jumps over every acknowledged batch.
 */
import { afterAll, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { MuteBroker } from "../helpers/mute-broker.js";
import { waitFor } from "../helpers/ports.js";
import { testConfig, TestDriver } from "./uplink-fixtures.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const seqsOf = (payload: Buffer) =>
  (JSON.parse(payload.toString()) as { records: { seq: number }[] }).records.map((r) => r.seq);

it("out-of-order PUBACKs: the watermark advances only over a contiguous acknowledged prefix", async () => {
  const broker = await MuteBroker.start(1);
  cleanups.push(() => broker.close());
  const telemetry = (c: number) =>
    broker.published.filter((p) => p.connection === c && p.topic.endsWith("/telemetry"));
  const config = testConfig(broker.url, { uplink: { batch_size: 50, inflight: 16 } });
  let driver!: TestDriver;
  const agent = new Agent(config, {
    extraDrivers: [{ id: "t", create: (ctx) => (driver = new TestDriver("t", ctx)) }],
  });
  await agent.start();
  cleanups.push(() => agent.stop());
  await agent.uplink.whenConnected();
  const sent = () => agent.store.outbox.sentUpTo(1);

  // Phase 1: the first batch's PUBACK is withheld, batches 2..10 are acknowledged.
  broker.hold = (p, i) => p.topic.endsWith("/telemetry") && i === 0;
  driver.produce(500);
  await waitFor(() => agent.uplink.status().published_messages >= 9, 10_000, "9 PUBACKs");
  expect(telemetry(1)).toHaveLength(10);
  expect(sent()).toBe(0); // batch 1 (seq 1..50) is not acknowledged: nothing is "sent"
  expect(agent.store.stats().pending.live).toBe(500);
  broker.release();
  await waitFor(() => sent() === 500, 10_000, "watermark over all ten batches");

  // Phase 2: batch 3 of the next ten is withheld, then the link is lost before it arrives.
  broker.hold = (p, i) => p.topic.endsWith("/telemetry") && i === 12;
  driver.produce(500);
  await waitFor(() => telemetry(1).length === 20, 10_000, "the next ten batches published");
  await waitFor(() => agent.uplink.status().published_messages >= 19, 10_000, "9 more PUBACKs");
  expect(sent()).toBe(600); // batches 11, 12 acknowledged; 13 withheld; 14..20 do not count
  broker.hold = undefined;
  broker.dropClients();
  await waitFor(() => agent.store.stats().pending.live === 0, 20_000, "drained after reconnect");
  // The new link resumed at the first unacknowledged seq: 601..1000, in order, nothing skipped.
  expect(telemetry(2).flatMap((p) => seqsOf(p.payload))).toEqual(
    Array.from({ length: 400 }, (_, i) => 601 + i),
  );
  expect(sent()).toBe(1000);
});
