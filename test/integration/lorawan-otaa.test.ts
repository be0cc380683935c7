/**
 * End to end over real UDP: simulated concentrators and end devices against the driver. OTAA join,
 * encrypted uplinks decoded by a sandboxed codec, replays, reused DevNonces, wrong MICs, and a
 * command that reaches the device in RX1 (confirmed and acknowledged).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimDevice } from "../../sim/lorawan/device.js";
import { waitFor } from "../helpers/ports.js";
import { ABP, OTAA, rig, type Rig } from "../helpers/lorawan.js";

let r: Rig;
let dev: SimDevice;
beforeAll(async () => {
  r = await rig({ gateways: 2 });
  // The second concentrator hears the devices better: it must carry the downlinks.
  r.radio.signal = (i) => (i === 0 ? { rssi: -110, lsnr: -5 } : { rssi: -70, lsnr: 7.5 });
  dev = new SimDevice(OTAA, r.radio, { devNonce: 100 });
});
afterAll(async () => r?.close());

const events = (type: string) => r.rec.events.filter((e) => e.type === type);

describe("LoRaWAN OTAA over UDP", () => {
  it("joins: Join Accept in RX1 through the best concentrator, keys derived on both sides", async () => {
    expect(await dev.join()).toBe(true);
    await waitFor(() => events("lorawan_join").length === 1, 3000, "join event");
    const ev = events("lorawan_join")[0]!;
    expect(ev).toMatchObject({
      device: "co2-ecole",
      severity: "info",
      data: { window: "rx1", gateway: r.forwarders[1]!.eui, devAddr: dev.devAddr!.toString("hex") },
    });
    expect(r.forwarders[1]!.sent).toHaveLength(1);
    expect(r.forwarders[0]!.sent).toHaveLength(0);
    const tx = r.forwarders[1]!.sent[0]!;
    expect(tx).toMatchObject({ imme: false, ipol: true, datr: "SF7BW125", codr: "4/5", powe: 14 });
  });

  it("decodes encrypted uplinks heard by two concentrators once, with the best rssi/snr", async () => {
    await dev.uplink(85, Buffer.from("017564036718010468" + "6D077DC501", "hex"), {
      listen: false,
    });
    await dev.uplink(85, Buffer.from("077DD007", "hex"), { listen: false });
    await waitFor(
      () => r.rec.readings.filter((x) => x.point === "co2").length === 2,
      3000,
      "two co2 readings",
    );
    const co2 = r.rec.readings.filter((x) => x.device === "co2-ecole" && x.point === "co2");
    expect(co2.map((x) => x.value)).toEqual([453, 2000]);
    expect(co2[0]).toMatchObject({ unit: "ppm", quality: "good" });
    expect(r.rec.readings.find((x) => x.point === "temperature")).toMatchObject({
      value: 28,
      unit: "Cel",
    });
    expect(r.rec.readings.filter((x) => x.point === "rssi").map((x) => x.value)).toEqual([
      -70, -70,
    ]);
    expect(r.rec.readings.find((x) => x.point === "snr")).toMatchObject({ value: 7.5, unit: "dB" });
    const st = r.driver.status();
    // Copies from the second concentrator: the Join Request and the two uplinks.
    expect(st.counters).toMatchObject({ uplinks: 2, duplicates: 3, decoded: 2 });
  });

  it("rejects and reports a replayed frame and a frame with a wrong MIC", async () => {
    const before = r.rec.readings.length;
    const old = dev.frame(85, Buffer.from("077D0100", "hex"));
    await dev.uplink(85, Buffer.from("077D0200", "hex"), { listen: false });
    await waitFor(
      () => r.rec.readings.some((x) => x.point === "co2" && x.value === 2),
      3000,
      "fresh frame",
    );
    await dev.send(old, { listen: false }); // counter below the last accepted one
    await waitFor(() => events("lorawan_replay_rejected").length === 1, 3000, "replay event");
    expect(events("lorawan_replay_rejected")[0]).toMatchObject({
      device: "co2-ecole",
      severity: "warning",
    });
    const forged = dev.frame(85, Buffer.from("077D0300", "hex"));
    forged[forged.length - 1]! ^= 0xff;
    await dev.send(forged, { listen: false });
    await waitFor(() => events("lorawan_mic_failed").length === 1, 3000, "MIC event");
    expect(r.rec.readings.filter((x) => x.point === "co2").length).toBe(
      r.rec.readings.slice(0, before).filter((x) => x.point === "co2").length + 1,
    );
    expect(r.driver.status().counters).toMatchObject({ replays: 1, mic_failed: 1 });
  });

  it("refuses a reused DevNonce", async () => {
    const again = new SimDevice(OTAA, r.radio);
    await again.join({ devNonce: 100, listen: false });
    await waitFor(() => events("lorawan_devnonce_reused").length === 1, 3000, "DevNonce event");
    expect(events("lorawan_devnonce_reused")[0]!.data).toMatchObject({ devNonce: 100 });
    // The session of the joined device is untouched.
    await dev.uplink(85, Buffer.from("077D0400", "hex"), { listen: false });
    await waitFor(
      () => r.rec.readings.some((x) => x.point === "co2" && x.value === 4),
      3000,
      "uplink after refused join",
    );
  });

  it("answers LinkCheckReq and DeviceTimeReq in RX1", async () => {
    const gpsMs = 1_400_000_000_123;
    const dl = await dev.uplink(85, Buffer.from("017550", "hex"), {
      mac: Buffer.from([0x02, 0x0d]),
      tmms: gpsMs,
    });
    expect(dl).toBeDefined();
    expect(dl!.window).toBe("rx1");
    expect(dl!.mac.map((m) => m.name)).toEqual(["LinkCheckAns", "DeviceTimeAns"]);
    const [link, time] = dl!.mac;
    expect(link!.payload[0]).toBe(15); // 7.5 dB above the SF7 floor of -7.5 dB
    expect(link!.payload[1]).toBe(2); // heard by two concentrators
    expect(time!.payload.readUInt32LE(0)).toBe(Math.floor(gpsMs / 1000));
    expect(time!.payload[4]).toBe(Math.floor((123 * 256) / 1000));
  });

  it("delivers a confirmed command in RX1 after the next uplink, and records the ACK", async () => {
    const w = await r.driver.write({
      device: "co2-ecole",
      point: "report_interval",
      value: 1200,
      confirmed: true,
      commandId: "cmd-1",
    });
    expect(w).toMatchObject({ ok: true, queued: true });
    const dl = await dev.uplink(85, Buffer.from("017550", "hex"));
    expect(dl).toMatchObject({ window: "rx1", confirmed: true, fPort: 85, fPending: false });
    expect(dl!.payload.toString("hex")).toBe("ff03b004");
    await waitFor(() => events("lorawan_downlink_sent").length === 1, 3000, "sent event");
    expect(events("lorawan_downlink_sent")[0]).toMatchObject({
      data: { commandId: "cmd-1", window: "rx1" },
    });
    // The device acknowledges in its next uplink.
    await dev.uplink(85, Buffer.from("017550", "hex"), { listen: false });
    await waitFor(() => events("lorawan_downlink_acked").length === 1, 3000, "ack event");
    expect(events("lorawan_downlink_acked")[0]).toMatchObject({
      device: "co2-ecole",
      data: { commandId: "cmd-1" },
    });
  });

  it("answers a confirmed uplink with an ACK and sets FPending when more is queued", async () => {
    await r.driver.write({ device: "co2-ecole", point: "report_interval", value: 600 });
    await r.driver.write({ device: "co2-ecole", point: "report_interval", value: 900 });
    const dl = await dev.uplink(85, Buffer.from("017550", "hex"), { confirmed: true });
    expect(dl).toMatchObject({ ack: true, fPending: true, fPort: 85 });
    expect(dl!.payload.toString("hex")).toBe("ff035802");
    const dl2 = await dev.uplink(85, Buffer.from("017550", "hex"));
    expect(dl2).toMatchObject({ fPending: false });
    expect(dl2!.payload.toString("hex")).toBe("ff038403");
    // Downlink counters increase on the device side too (it checked every MIC).
    expect(dev.fCntDown).toBeGreaterThanOrEqual(4);
  });

  it("ABP device from the config; unknown DevAddr frames are counted and ignored", async () => {
    const abp = new SimDevice(ABP, r.radio);
    await abp.uplink(85, Buffer.from("077D2C01", "hex"), { listen: false });
    await waitFor(
      () =>
        r.rec.readings.some(
          (x) => x.device === "co2-mairie" && x.point === "co2" && x.value === 300,
        ),
      3000,
      "ABP reading",
    );
    const stranger = new SimDevice({ ...ABP, devAddr: "01020304" }, r.radio);
    await stranger.uplink(85, Buffer.from("077D2C01", "hex"), { listen: false });
    await waitFor(
      () => r.driver.status().counters!.unknown_devaddr === 1,
      3000,
      "unknown DevAddr counted",
    );
  });
});
