/**
 * The LoRaWAN driver against bad input and restarts, over real UDP: malformed datagrams are
 * counted and ignored; a looping codec only costs its own devices; counters, DevNonces and queued
 * commands survive a restart in the store's real SQLite state (no replay window reopens).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { Store } from "../../agent/store/store.js";
import { configSchema } from "../../config/schema.js";
import { SimDevice } from "../../sim/lorawan/device.js";
import { waitFor } from "../helpers/ports.js";
import { ABP, OTAA, lorawanConfig, rig, type Rig } from "../helpers/lorawan.js";

const dir = mkdtempSync(join(tmpdir(), "eclor-lorawan-"));
const rigs: Rig[] = [];
afterAll(async () => {
  await Promise.all(rigs.map((r) => r.close()));
  rmSync(dir, { recursive: true, force: true });
});
const started = async (o: Parameters<typeof rig>[0]) => {
  const r = await rig(o);
  rigs.push(r);
  return r;
};

describe("malformed datagrams", () => {
  it("are counted per reason and ignored; the server keeps serving (protocol v1 too)", async () => {
    const r = await started({ version: 1 });
    const fw = r.forwarders[0]!;
    const eui = fw.eui;
    const push = (body: string, version = 2) =>
      Buffer.concat([
        Buffer.from([version, 0x12, 0x34, 0x00]),
        Buffer.from(eui, "hex"),
        Buffer.from(body),
      ]);
    fw.raw(Buffer.from([2, 0])); // short
    fw.raw(push("{}", 3)); // wrong version
    fw.raw(Buffer.from([2, 0, 1, 0x09])); // unknown identifier
    fw.raw(push("{not json")); // bad JSON
    fw.raw(
      push(
        JSON.stringify({
          rxpk: [{ tmst: 1, freq: 868.1, datr: "SF7BW125", rssi: -50, size: 3, data: "@@@@" }],
        }),
      ),
    ); // bad base64
    fw.raw(
      push(
        JSON.stringify({
          rxpk: [{ tmst: 1, freq: 868.1, datr: "SF7BW125", rssi: -50, size: 9, data: "AAAA" }],
        }),
      ),
    ); // size mismatch
    fw.raw(push(JSON.stringify({ rxpk: [{ freq: 868.1 }] }))); // missing fields
    fw.raw(
      push(
        JSON.stringify({
          rxpk: [{ tmst: 1, freq: 868.1, datr: "SF7BW125", rssi: -50, stat: -1, data: "QAECAwQ=" }],
        }),
      ),
    ); // CRC bad
    fw.raw(
      push(
        JSON.stringify({
          rxpk: [{ tmst: 1, freq: 868.1, datr: "SF7BW125", rssi: -50, data: "QAECAwQ=" }],
        }),
      ),
    ); // garbage LoRaWAN frame
    fw.raw(Buffer.from([2, 0, 1, 0x01])); // a PUSH_ACK sent to the server
    await waitFor(() => r.driver.status().counters!.datagrams! >= 11, 3000, "datagrams handled");
    expect(r.driver.status().counters).toMatchObject({
      malformed_short: 1,
      malformed_version: 1,
      malformed_identifier: 1,
      malformed_json: 1,
      malformed_base64: 2,
      malformed_field: 1,
      rxpk_crc_bad: 1,
      unexpected: 1,
    });
    await waitFor(
      () => r.driver.status().counters!.invalid_frames === 1,
      3000,
      "invalid frame counted",
    );
    // Still serving: a real device is decoded afterwards, over a v1 forwarder.
    const abp = new SimDevice(ABP, r.radio);
    const dl = await abp.uplink(85, Buffer.from("077D2C01", "hex"), { confirmed: true });
    expect(dl).toMatchObject({ ack: true, window: "rx1" });
    await waitFor(
      () =>
        r.rec.readings.some(
          (x) => x.device === "co2-mairie" && x.point === "co2" && x.value === 300,
        ),
      5000,
      "decoded after the garbage",
    );
  });

  it("turns concentrator `stat` reports into readings of the concentrator", async () => {
    const r = await started({});
    await r.forwarders[0]!.stat({
      time: "2026-01-01 00:00:00 GMT",
      rxnb: 12,
      rxok: 10,
      rxfw: 10,
      ackr: 100,
      dwnb: 2,
      txnb: 2,
      lati: 49.4,
      long: 6.1,
      alti: 210,
    });
    const dev = `gw-${r.forwarders[0]!.eui}`;
    await waitFor(() => r.rec.readings.some((x) => x.device === dev), 3000, "gateway readings");
    const by = Object.fromEntries(
      r.rec.readings.filter((x) => x.device === dev).map((x) => [x.point, [x.value, x.unit]]),
    );
    expect(by).toEqual({
      rx_received: [12, "count"],
      rx_ok: [10, "count"],
      rx_forwarded: [10, "count"],
      ack_ratio: [100, "%"],
      dl_received: [2, "count"],
      tx_sent: [2, "count"],
      latitude: [49.4, "lat"],
      longitude: [6.1, "lon"],
      altitude: [210, "m"],
    });
    expect(r.driver.inventory().some((d) => d.id === dev)).toBe(true);
    expect(r.driver.status().devices.find((d) => d.id === dev)).toMatchObject({ online: true });
  });
});

describe("codec sandbox inside the driver", () => {
  it("a looping codec gives codec_error readings and an event; other devices keep being decoded", async () => {
    const codec = join(dir, "loops.js");
    writeFileSync(codec, "function decodeUplink(input) { while (true) {} }\n");
    const cfg = lorawanConfig({ dedup_window: "0ms", codec_timeout: "300ms" });
    cfg.devices[1] = {
      ...cfg.devices[1]!,
      codec,
      profile: undefined,
      points: [{ id: "level", unit: "%", writable: false, scale: 1, offset: 0 }],
    };
    const r = await started({ cfg });
    const bad = new SimDevice(ABP, r.radio);
    // The OTAA device joins first so that both devices are live.
    const joined = new SimDevice(OTAA, r.radio, { devNonce: 7 });
    expect(await joined.join()).toBe(true);
    const t0 = Date.now();
    await bad.uplink(85, Buffer.from("01", "hex"), { listen: false });
    for (let i = 0; i < 5; i++)
      await joined.uplink(85, Buffer.from([0x07, 0x7d, 100 + i, 0]), { listen: false });
    await waitFor(
      () =>
        r.rec.readings.filter((x) => x.device === "co2-ecole" && x.point === "co2").length === 5,
      3000,
      "good device decoded",
    );
    // The good device's readings did not wait for the looping codec's time limit.
    const goodDone = Date.now() - t0;
    await waitFor(
      () => r.rec.events.some((e) => e.type === "lorawan_codec_error"),
      5000,
      "codec error event",
    );
    expect(r.rec.events.find((e) => e.type === "lorawan_codec_error")).toMatchObject({
      device: "co2-mairie",
      severity: "warning",
      data: { kind: "timeout" },
    });
    expect(
      r.rec.readings.find((x) => x.device === "co2-mairie" && x.point === "level"),
    ).toMatchObject({ value: null, quality: "codec_error", unit: "%" });
    expect(
      r.rec.readings.find((x) => x.device === "co2-mairie" && x.point === "rssi"),
    ).toMatchObject({ quality: "good" });
    expect(goodDone).toBeLessThan(3000);
  });
});

describe("state in the store's SQLite survives a restart", () => {
  const storeDefaults = configSchema.parse({
    version: 1,
    gateway: { id: "t" },
    uplink: { url: "mqtt://127.0.0.1:1" },
  }).store;
  const openStore = () =>
    new Store({
      ...storeDefaults,
      path: join(dir, "store.db"),
      logger: pino({ level: "silent" }),
    }).open();

  it("keeps counters, DevNonces and queued commands: replays and reused nonces stay refused", async () => {
    let store = openStore();
    let r = await started({ state: store.kv("lora") });
    const dev = new SimDevice(OTAA, r.radio, { devNonce: 500 });
    expect(await dev.join()).toBe(true);
    const frames = [
      dev.frame(85, Buffer.from("077D0100", "hex")),
      dev.frame(85, Buffer.from("077D0200", "hex")),
    ];
    for (const f of frames) await dev.send(f, { listen: false });
    await waitFor(
      () => r.rec.readings.filter((x) => x.point === "co2").length === 2,
      3000,
      "two readings",
    );
    await r.driver.write({
      device: "co2-ecole",
      point: "report_interval",
      value: 3600,
      commandId: "after-restart",
    });
    await r.close();
    store.close();

    store = openStore();
    r = await started({ state: store.kv("lora") });
    dev.radio = r.radio; // the same device, now heard through the new agent's concentrator
    // Re-sending the first frame after the restart: refused, the counter was persisted.
    await dev.send(frames[0]!, { listen: false });
    await waitFor(
      () => r.rec.events.some((e) => e.type === "lorawan_replay_rejected"),
      3000,
      "replay refused after restart",
    );
    // A join with the old DevNonce: refused.
    await new SimDevice(OTAA, r.radio).join({ devNonce: 500, listen: false });
    await waitFor(
      () => r.rec.events.some((e) => e.type === "lorawan_devnonce_reused"),
      3000,
      "nonce refused after restart",
    );
    // The session continues, and the command queued before the restart goes out in RX1.
    const dl = await dev.uplink(85, Buffer.from("077D0300", "hex"));
    expect(dl).toMatchObject({ window: "rx1", fPort: 85 });
    expect(dl!.payload.toString("hex")).toBe("ff03100e");
    await waitFor(
      () => r.rec.readings.some((x) => x.point === "co2" && x.value === 3),
      5000,
      "reading after restart",
    );
    await r.close();
    store.close();
  });
});
