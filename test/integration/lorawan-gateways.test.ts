/**
 * The packet-forwarder port against a hostile local network (issue 14.4), over real UDP on
 * loopback: unknown gateway EUIs are counted per source and produce no readings, the gateway
 * table is capped, a forged PULL_DATA from another address cannot redirect a concentrator's
 * downlinks, 500 forged frames give a bounded number of aggregated MIC events, and the status
 * stays small whatever arrives.
 */
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { build } from "../../drivers/lorawan/semtech.js";
import { SimDevice } from "../../sim/lorawan/device.js";
import { SimForwarder } from "../../sim/lorawan/forwarder.js";
import { waitFor } from "../helpers/ports.js";
import { ABP, lorawanConfig, rig, type Rig } from "../helpers/lorawan.js";

const rigs: Rig[] = [];
const extra: SimForwarder[] = [];
afterAll(async () => {
  await Promise.all(extra.map((f) => f.stop()));
  await Promise.all(rigs.map((r) => r.close()));
});
const started = async (o: Parameters<typeof rig>[0]) => {
  const r = await rig(o);
  rigs.push(r);
  return r;
};
const REAL = "aa555a0000000000"; // rig()'s first concentrator

/**
 * Send `n` PUSH_DATA with random EUIs, in batches that the listener's socket buffer can hold
 * (a real flood loses datagrams in the kernel; this test wants to count every one).
 */
async function flood(r: Rig, n: number, from: Awaited<ReturnType<typeof sender>>) {
  const port = r.driver.port();
  const base = r.driver.status().counters!.datagrams!;
  for (let i = 0; i < n; i += 50) {
    for (let j = i; j < Math.min(n, i + 50); j++)
      from.send(build.pushData(2, j & 0xffff, randomBytes(8).toString("hex"), { stat }), port);
    await waitFor(
      () => r.driver.status().counters!.datagrams! >= base + Math.min(n, i + 50),
      5000,
      "datagrams received",
    );
  }
}

/** A raw UDP sender from `bind` (any 127.x address is a distinct "host" on loopback). */
async function sender(bind = "127.0.0.1") {
  const s = createSocket("udp4");
  const got: Buffer[] = [];
  s.on("message", (m) => got.push(m));
  await new Promise<void>((resolve) => s.bind(0, bind, () => resolve()));
  return {
    got,
    send: (b: Buffer, port: number) => s.send(b, port, "127.0.0.1"),
    close: () => new Promise<void>((resolve) => s.close(() => resolve())),
  };
}

const stat = { time: "2026-01-01 00:00:00 GMT", rxnb: 1, rxok: 1, rxfw: 1, ackr: 100, dwnb: 0 };

describe("gateway EUI allow-list", () => {
  it("serves listed concentrators only; others are counted per source, no readings, no ACK", async () => {
    const r = await started({ cfg: lorawanConfig({ gateways: { allow: [REAL] } }) });
    const attacker = await sender();
    await flood(r, 2000, attacker);
    expect(r.driver.status().counters!.gateway_unknown).toBe(2000);
    expect(attacker.got).toHaveLength(0); // not acknowledged
    await attacker.close();
    // The listed concentrator is served as before.
    await r.forwarders[0]!.stat(stat);
    await waitFor(
      () => r.rec.readings.some((x) => x.device === `gw-${REAL}`),
      3000,
      "listed gateway's readings",
    );
    expect(
      r.rec.readings.filter((x) => x.device.startsWith("gw-") && x.device !== `gw-${REAL}`),
    ).toHaveLength(0);
    const st = r.driver.status();
    expect(st.devices.filter((d) => d.id.startsWith("gw-"))).toHaveLength(1);
    expect(st.detail).toContain("refused datagrams from 127.0.0.1 (2000");
    expect(JSON.stringify(st).length).toBeLessThan(4000);
    // One event, the rest summed up later (event_interval): not one per datagram.
    expect(
      r.rec.events.filter((e) => e.type === "lorawan_gateway_refused").length,
    ).toBeLessThanOrEqual(2);
  });
});

describe("gateway table without an allow-list (loopback listener)", () => {
  it("is capped at gateways.max; the status stays bounded", async () => {
    const r = await started({ cfg: lorawanConfig({ gateways: { max: 3 } }) });
    const attacker = await sender();
    await flood(r, 500, attacker);
    expect(r.driver.status().counters!.gateway_table_full).toBe(498);
    await attacker.close();
    const st = r.driver.status();
    expect(st.devices.filter((d) => d.id.startsWith("gw-"))).toHaveLength(3); // rig's + 2
    expect(r.driver.inventory().filter((d) => d.id.startsWith("gw-"))).toHaveLength(3);
    expect(new Set(r.rec.readings.map((x) => x.device)).size).toBeLessThanOrEqual(3);
    expect(JSON.stringify(st).length).toBeLessThan(4000);
  });
});

describe("a forged PULL_DATA", () => {
  it("from another address does not redirect the concentrator's downlinks", async () => {
    const r = await started({ cfg: lorawanConfig({ gateways: { allow: [REAL] } }) });
    const attacker = await sender("127.0.0.2");
    attacker.send(build.pullData(2, 7, REAL), r.driver.port());
    await waitFor(
      () => r.driver.status().counters!.gateway_wrong_source === 1,
      3000,
      "forged PULL_DATA refused",
    );
    const dev = new SimDevice(ABP, r.radio);
    const dl = await dev.uplink(85, Buffer.from("077D2C01", "hex"), { confirmed: true });
    expect(dl).toMatchObject({ ack: true, window: "rx1" }); // through the real concentrator
    expect(attacker.got).toHaveLength(0); // no PULL_ACK, no PULL_RESP
    await attacker.close();
    expect(r.rec.events.find((e) => e.type === "lorawan_gateway_refused")).toMatchObject({
      data: { cause: "wrong_source", gateway: REAL, source: "127.0.0.2" },
    });
  });

  it("an address pinned in the allow-list is the only one served for that EUI", async () => {
    const cfg = lorawanConfig({
      gateways: { allow: [{ eui: "aa555a00000000ee", address: "127.0.0.3" }] },
    });
    const r = await started({ cfg, gateways: 0 });
    const wrong = new SimForwarder({
      server: { host: "127.0.0.1", port: r.driver.port() },
      gatewayEui: "aa555a00000000ee",
      pullOnStart: false,
    });
    const right = new SimForwarder({
      server: { host: "127.0.0.1", port: r.driver.port() },
      gatewayEui: "aa555a00000000ee",
      bind: "127.0.0.3",
    });
    extra.push(wrong, right);
    await wrong.start();
    await expect(wrong.pull()).rejects.toThrow(/no ACK/);
    await right.start(); // its PULL_DATA is acknowledged
    expect(right.pullAcked).toBe(true);
  });
});

describe("wrong MICs for a known device", () => {
  it("500 forged frames: every one counted, a bounded number of aggregated events", async () => {
    const r = await started({});
    const dev = new SimDevice(ABP, r.radio);
    for (let i = 0; i < 500; i++) {
      const forged = dev.frame(85, Buffer.from([0x07, 0x7d, i & 0xff, i >> 8]));
      forged[forged.length - 1]! ^= 0x5a;
      await dev.send(forged, { listen: false });
    }
    await waitFor(
      () => r.driver.status().counters!.mic_failed === 500,
      20_000,
      "500 MIC failures counted",
    );
    const mic = () => r.rec.events.filter((e) => e.type === "lorawan_mic_failed");
    // event_interval is 1 min: the first at once, the rest in one summary per minute.
    expect(mic().length).toBeLessThanOrEqual(2);
    await r.driver.stop(); // raises the pending summary
    const counts = mic().map((e) => e.data!.count as number);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(500);
    expect(mic().length).toBeLessThanOrEqual(3);
    expect(mic().at(-1)).toMatchObject({ device: "co2-mairie", data: { aggregated: true } });
  });
});
