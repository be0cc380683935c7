/**
 * A seq is never reused (ARCHITECTURE.md invariant 6, issue 15 item 1): the database is replaced
 * (the store's own remedy for a corrupt file: "move the file aside and start again"), seqs start
 * at 1 again, and a hypervisor that deduplicates by (gateway, epoch, seq) as docs/mqtt-api.md §7
 * says still receives every reading published after the replacement, plus the `store_epoch`
 * event that explains it.
 */
import { renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { storeEpochDataSchema } from "../../agent/uplink/payloads.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { hypervisor, testConfig, TestDriver } from "./uplink-fixtures.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it("after the database is replaced, a subscriber deduping by (epoch, seq) gets every new reading", async () => {
  const broker = await Mosquitto.start();
  cleanups.push(() => broker.dispose());
  const { client, rx } = await hypervisor(broker.url);
  cleanups.push(() => client.endAsync(true));
  const config = testConfig(broker.url);
  cleanups.push(() => rmSync(config.state_dir, { recursive: true, force: true }));
  const run = async (count: number): Promise<Agent> => {
    let driver!: TestDriver;
    const agent = new Agent(config, {
      extraDrivers: [{ id: "t", create: (ctx) => (driver = new TestDriver("t", ctx)) }],
    });
    await agent.start();
    await agent.uplink.whenConnected();
    driver.produce(count);
    await waitFor(() => agent.store.stats().pending.live === 0, 10_000, "drained");
    return agent;
  };

  const first = await run(300);
  const oldEpoch = first.store.epoch;
  await first.stop();
  const db = join(config.state_dir, "store.db");
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      renameSync(db + suffix, `${db}${suffix}.corrupt`);
    } catch {
      // -wal/-shm are absent after a clean close
    }
  }
  const second = await run(200);
  cleanups.push(() => second.stop());
  expect(second.store.epoch).not.toBe(oldEpoch);

  // What the docs tell the hypervisor to do: drop a (gateway, epoch, seq) it already stored.
  await waitFor(
    () => rx.keys.size >= 500,
    10_000,
    `500 distinct (epoch, seq), have ${rx.keys.size}`,
  );
  expect(rx.keys.size).toBe(500);
  expect([...rx.keys].filter((k) => k.startsWith(`${second.store.epoch}:`))).toHaveLength(200);
  const announce = await waitFor(
    () => rx.events.find((e) => e.type === "store_epoch"),
    10_000,
    "the store_epoch event",
  );
  expect(announce.data).toMatchObject({
    epoch: second.store.epoch,
    first_seq: 1,
    reason: "new_store",
    previous_epoch: oldEpoch,
  });
  expect(storeEpochDataSchema.parse(announce.data)).toBeTruthy();
  expect(rx.invalid).toEqual([]);
});
