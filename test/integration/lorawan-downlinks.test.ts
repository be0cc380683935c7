/**
 * The downlinks users of ChirpStack/TTN expect (issue 17.4), against the real driver over real
 * UDP with the project's simulated concentrator and devices: MAC answers packed by whole commands
 * (FPort 0 when they do not fit FOpts), a CFList in Join Accepts, an ABP counter reset, downlinks
 * right after a restart (no PULL_DATA since), and TTN v2 `Decoder(bytes, port)` codec files.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLorawanDriver } from "../../drivers/lorawan/index.js";
import { cfListEu868 } from "../../drivers/lorawan/lora.js";
import { SimDevice, SimRadio } from "../../sim/lorawan/device.js";
import { SimForwarder } from "../../sim/lorawan/forwarder.js";
import { waitFor } from "../helpers/ports.js";
import {
  ABP,
  MemoryState,
  OTAA,
  lorawanConfig,
  recorder,
  rig,
  type Rig,
} from "../helpers/lorawan.js";

const dir = mkdtempSync(join(tmpdir(), "eclor-lorawan-dl-"));
const rigs: Rig[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
  await Promise.all(rigs.map((r) => r.close()));
  rmSync(dir, { recursive: true, force: true });
});
const started = async (o: Parameters<typeof rig>[0]) => {
  const r = await rig(o);
  rigs.push(r);
  return r;
};

describe("MAC answers", () => {
  it("three DeviceTimeAns (18 bytes) go whole in FPort 0, a queued command in the next downlink", async () => {
    const r = await started({});
    const dev = new SimDevice(ABP, r.radio);
    await r.driver.write({ device: "co2-mairie", point: "report_interval", value: 600 });
    const first = await dev.uplink(85, Buffer.from("077D2C01", "hex"), {
      mac: Buffer.from("0d0d0d", "hex"),
    });
    // Cut at 15 bytes before: two whole answers and 3 bytes of the third.
    expect(first).toMatchObject({ fPort: 0, fPending: true });
    expect(first!.mac.map((c) => c.name)).toEqual([
      "DeviceTimeAns",
      "DeviceTimeAns",
      "DeviceTimeAns",
    ]);
    const second = await dev.uplink(85, Buffer.from("077D2D01", "hex"));
    expect(second).toMatchObject({ fPort: 85, fPending: false });
    expect(second!.payload.toString("hex")).toBe("ff035802"); // 600 s
  });

  it("answers that fit stay in FOpts beside the application payload", async () => {
    const r = await started({});
    const dev = new SimDevice(ABP, r.radio);
    await r.driver.write({ device: "co2-mairie", point: "report_interval", value: 900 });
    const dl = await dev.uplink(85, Buffer.from("077D2C01", "hex"), {
      mac: Buffer.from("020d", "hex"),
    });
    expect(dl).toMatchObject({ fPort: 85, fPending: false });
    expect(dl!.mac.map((c) => c.name)).toEqual(["LinkCheckAns", "DeviceTimeAns"]);
  });
});

describe("Join Accept CFList", () => {
  it("gives OTAA devices the configured EU868 extra channels", async () => {
    const extra = [867.1, 867.3, 867.5, 867.7, 867.9];
    // RP002-1.0.4 §2.4.4: 24-bit little-endian frequencies in 100 Hz, then CFListType 0.
    expect(cfListEu868(extra).toString("hex")).toBe("184f84e85684b85e84886684586e8400");
    const r = await started({ cfg: lorawanConfig({ extra_channels: extra }) });
    const dev = new SimDevice(OTAA, r.radio);
    expect(await dev.join()).toBe(true);
    expect(dev.extraChannels).toEqual(extra);
  });

  it("refuses more than five channels and frequencies out of the band", () => {
    expect(() =>
      lorawanConfig({ extra_channels: [867.1, 867.3, 867.5, 867.7, 867.9, 868.8] }),
    ).toThrow(/at most 5 extra channels/);
    expect(() => lorawanConfig({ extra_channels: [915.2] })).toThrow(/863..870/);
  });
});

describe("ABP frame counters", () => {
  it("a device that restarted its counters is refused until reset through write", async () => {
    const r = await started({});
    const dev = new SimDevice(ABP, r.radio);
    for (let i = 0; i < 3; i++)
      await dev.uplink(85, Buffer.from([0x07, 0x7d, i, 0]), { listen: false });
    await waitFor(() => r.driver.status().counters!.uplinks === 3, 3000, "3 uplinks");
    const rebooted = new SimDevice(ABP, r.radio); // counters from 0 again
    await rebooted.uplink(85, Buffer.from("077D0900", "hex"), { listen: false });
    await waitFor(() => r.driver.status().counters!.replays === 1, 3000, "refused as a replay");
    expect(r.driver.inventory().find((d) => d.id === "co2-mairie")!.points).toContainEqual(
      expect.objectContaining({ id: "reset_frame_counters", type: "boolean", writable: true }),
    );
    await expect(
      r.driver.write({ device: "co2-ecole", point: "reset_frame_counters", value: true }),
    ).rejects.toThrow(/OTAA device/);
    expect(
      await r.driver.write({
        device: "co2-mairie",
        point: "reset_frame_counters",
        value: true,
        commandId: "reset-1",
      }),
    ).toMatchObject({ ok: true });
    expect(r.rec.events.find((e) => e.type === "lorawan_counters_reset")).toMatchObject({
      device: "co2-mairie",
      data: { fCntUp: 3, commandId: "reset-1" },
    });
    const again = new SimDevice(ABP, r.radio);
    await again.uplink(85, Buffer.from("077D0A00", "hex"), { listen: false });
    await waitFor(
      () =>
        r.rec.readings.some(
          (x) => x.device === "co2-mairie" && x.point === "co2" && x.value === 10,
        ),
      3000,
      "accepted after the reset",
    );
  });
});

describe("downlinks right after a restart", () => {
  it("use the concentrator's persisted PULL_DATA address (no tx_failed)", async () => {
    const state = new MemoryState();
    const rec1 = recorder(state);
    const d1 = createLorawanDriver(lorawanConfig(), rec1.ctx);
    await d1.start();
    const port = d1.port();
    const radio = new SimRadio();
    // A keepalive far away: the forwarder sends one PULL_DATA, to the first agent only.
    const fw = new SimForwarder({
      server: { host: "127.0.0.1", port },
      gatewayEui: "aa555a0000000000",
      keepaliveMs: 3_600_000,
      onAir: radio.air,
    });
    await fw.start();
    radio.forwarders.push(fw);
    cleanups.push(() => fw.stop());
    await waitFor(() => d1.status().counters!.pull_data === 1, 3000, "PULL_DATA");
    await d1.stop();

    const rec2 = recorder(state);
    const d2 = createLorawanDriver(
      lorawanConfig({ listen: { host: "127.0.0.1", port } }),
      rec2.ctx,
    );
    await d2.start();
    cleanups.push(() => d2.stop());
    expect(d2.status().counters).toMatchObject({ gateway_paths_restored: 1, pull_data: 0 });
    const dev = new SimDevice(ABP, radio);
    const dl = await dev.uplink(85, Buffer.from("077D2C01", "hex"), { confirmed: true });
    expect(dl).toMatchObject({ ack: true, window: "rx1" });
    expect(d2.status().counters).toMatchObject({ tx_tx_failed: 0, pull_data: 0 });
  });
});

describe("TTN v2 codec files", () => {
  it("`Decoder(bytes, port)` is called when there is no decodeUplink", async () => {
    // The Milesight AM103 codec of this repository, in the legacy TTN v2 form (its decodeUplink
    // renamed away, a Decoder(bytes, port) returning the data itself, as v2 codecs do).
    const v3 = readFileSync(
      new URL("../../drivers/lorawan/codecs/milesight-am103.js", import.meta.url),
      "utf8",
    );
    const path = join(dir, "am103-ttn-v2.js");
    writeFileSync(
      path,
      `${v3.replace(/function decodeUplink\(/, "function am103Decode(")}
function Decoder(bytes, port) { return am103Decode({ bytes: bytes, fPort: port }).data; }
`,
    );
    const cfg = lorawanConfig();
    cfg.profiles.co2!.codec = path;
    const r = await started({ cfg });
    const dev = new SimDevice(ABP, r.radio);
    // Milesight's example: 0175 5C, 0367 1001, 0468 71, 077D E704 → 92 %, 27.2 °C, 56.5 %, 1255 ppm
    await dev.uplink(85, Buffer.from("01755c03671001046871077de704", "hex"), { listen: false });
    await waitFor(
      () => r.rec.readings.some((x) => x.device === "co2-mairie" && x.point === "co2"),
      5000,
      "decoded by the v2 codec",
    );
    const by = Object.fromEntries(
      r.rec.readings.filter((x) => x.device === "co2-mairie").map((x) => [x.point, x.value]),
    );
    expect(by).toMatchObject({ co2: 1255, temperature: 27.2, humidity: 56.5, battery: 92 });
  });
});
