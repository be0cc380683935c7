/**
 * A broker that stops acknowledging (answers PINGREQ, never PUBACK) must not stall the uplink
 * forever with `connected: true` (issue 15 item 5): after 2 × keepalive without PUBACK the agent
 * drops the connection and reconnects, from the acknowledged watermark, and says so in ONE
 * warning per link loss — not one "broker refused telemetry batch … Connection closed" error per
 * in-flight batch (the broker refused nothing).
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { MuteBroker } from "../helpers/mute-broker.js";
import { waitFor } from "../helpers/ports.js";
import { testConfig, TestDriver } from "./uplink-fixtures.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it("no PUBACK for 2 × keepalive: one warning, reconnect, everything delivered once acked", async () => {
  // The first connection gets no PUBACK at all; the second one is acknowledged.
  const broker = await MuteBroker.start(2);
  cleanups.push(() => broker.close());
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: "debug" },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split("\n"))
          if (l) lines.push(JSON.parse(l) as { level: number; msg: string });
        cb();
      },
    }),
  );
  const config = testConfig(broker.url, { uplink: { keepalive_s: 5, batch_size: 50 } });
  let driver!: TestDriver;
  const agent = new Agent(config, {
    logger,
    extraDrivers: [{ id: "t", create: (ctx) => (driver = new TestDriver("t", ctx)) }],
  });
  await agent.start();
  cleanups.push(() => agent.stop());
  await agent.uplink.whenConnected();
  driver.produce(1000); // 20 batches: the in-flight window (16) fills and nothing comes back

  await waitFor(() => broker.connections >= 2, 30_000, "a reconnect after the PUBACK timeout");
  await waitFor(() => agent.store.stats().pending.live === 0, 20_000, "drained on the new link");
  const telemetry = (c: number) =>
    broker.published
      .filter((p) => p.connection === c && p.topic.endsWith("/telemetry"))
      .flatMap((p) => (JSON.parse(p.payload.toString()) as { records: { seq: number }[] }).records)
      .map((r) => r.seq);
  // The second link resumed at the first unacknowledged seq: everything, in order.
  expect(telemetry(2)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  expect(broker.pingreqs + telemetry(1).length).toBeGreaterThan(0);

  const drops = lines.filter((l) => /no PUBACK/.test(l.msg));
  expect(drops).toHaveLength(1);
  expect(drops[0]!.level).toBe(40); // warn
  expect(lines.filter((l) => l.level >= 50)).toEqual([]); // no error line at all
  expect(
    lines.filter((l) => l.level === 40 && /connection to broker lost/.test(l.msg)),
  ).toHaveLength(1);
});
