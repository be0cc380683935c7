/** LoRaWAN frame security against the published vectors in drivers/lorawan/testcases/lorawan.json. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  buildDataDown,
  buildDataUp,
  buildJoinAccept,
  buildJoinRequest,
  decryptPayload,
  fCntMsb,
  fullFCnt,
  lora,
  openJoinAccept,
  parse,
  sessionKeys,
  verifyDataMic,
  verifyJoinRequestMic,
} from "../../drivers/lorawan/lora.js";

interface Vectors {
  dataUplinks: {
    phyPayload: string;
    nwkSKey: string;
    appSKey: string;
    expect: {
      mType: string;
      devAddr: string;
      fCnt: number;
      fPort: number;
      mic: string;
      plaintextUtf8: string;
    };
  }[];
  joinRequests: { phyPayload: string; appKey: string; expect: { mic: string } }[];
  sessionKeys10: {
    appKey: string;
    netIdBE: string;
    appNonceBE: string;
    devNonceBE: string;
    expect: { nwkSKey: string; appSKey: string };
  }[];
  fCntReconstruction: { cases: [number, number, number][] };
}
const vectors = JSON.parse(
  readFileSync(new URL("../../drivers/lorawan/testcases/lorawan.json", import.meta.url), "utf8"),
) as Vectors;
const hex = (s: string) => Buffer.from(s, "hex");

describe("LoRaWAN vectors", () => {
  it.each(vectors.dataUplinks)("data uplink $source", (v) => {
    const p = parse(hex(v.phyPayload));
    expect(p.getMType()).toBe(v.expect.mType.replace(/([a-z])([A-Z])/g, "$1 $2"));
    expect(p.DevAddr!.toString("hex")).toBe(v.expect.devAddr);
    expect(p.getFCnt()).toBe(v.expect.fCnt);
    expect(p.getFPort()).toBe(v.expect.fPort);
    expect(p.MIC!.toString("hex")).toBe(v.expect.mic);
    expect(verifyDataMic(p, hex(v.nwkSKey), v.expect.fCnt)).toBe(true);
    expect(decryptPayload(p, hex(v.appSKey), hex(v.nwkSKey), v.expect.fCnt).toString("utf8")).toBe(
      v.expect.plaintextUtf8,
    );
    // The wrong key or the wrong upper counter bits fail the MIC.
    expect(verifyDataMic(p, hex(v.appSKey), v.expect.fCnt)).toBe(false);
    expect(verifyDataMic(p, hex(v.nwkSKey), v.expect.fCnt + 0x10000)).toBe(false);
  });

  it.each(vectors.joinRequests)("join request MIC $source", (v) => {
    const p = parse(hex(v.phyPayload));
    expect(p.MIC!.toString("hex")).toBe(v.expect.mic);
    expect(verifyJoinRequestMic(p, hex(v.appKey))).toBe(true);
    const other = hex(v.appKey);
    other[0]! ^= 1;
    expect(verifyJoinRequestMic(p, other)).toBe(false);
  });

  it.each(vectors.sessionKeys10)("session keys $source", (v) => {
    const k = sessionKeys(hex(v.appKey), hex(v.netIdBE), hex(v.appNonceBE), hex(v.devNonceBE));
    expect(k.nwkSKey.toString("hex")).toBe(v.expect.nwkSKey);
    expect(k.appSKey.toString("hex")).toBe(v.expect.appSKey);
  });

  it.each(vectors.fCntReconstruction.cases)(
    "full FCnt: next %d, received %d → %d",
    (next, got, want) => {
      expect(fullFCnt(next, got)).toBe(want);
    },
  );
});

describe("32-bit frame counters", () => {
  const nwk = hex("44024241ed4ce9a68c6a8bc055233fd3");
  const app = hex("ec925802ae430ca77fd3dd73cb2cc588");
  const devAddr = hex("49be7df1");

  it("FCntMSBytes is little-endian (pitfall 1): 0x00010002 needs 0100", () => {
    expect(fCntMsb(0x00010002).toString("hex")).toBe("0100");
    expect(fCntMsb(0x12345678).toString("hex")).toBe("3412");
  });

  it("accepts a counter rollover past 65535 and reconstructs it", () => {
    let next = 65534;
    for (const full of [65534, 65535, 65536, 65537, 70000]) {
      const phy = buildDataUp(
        { devAddr, fCnt32: full, confirmed: false, fPort: 5, payload: Buffer.from([full & 0xff]) },
        app,
        nwk,
      );
      const p = parse(phy);
      expect(p.getFCnt()).toBe(full & 0xffff);
      const rebuilt = fullFCnt(next, p.getFCnt()!);
      expect(rebuilt).toBe(full);
      expect(verifyDataMic(p, nwk, rebuilt)).toBe(true);
      // With only the 16 transmitted bits the MIC fails once past 65535.
      if (full > 0xffff) expect(verifyDataMic(p, nwk, full & 0xffff)).toBe(false);
      expect(decryptPayload(p, app, nwk, rebuilt)[0]).toBe(full & 0xff);
      next = rebuilt + 1;
    }
  });

  it("node:crypto FRMPayload decryption matches lora-packet's, up and down, any length and counter", () => {
    for (let n = 0; n < 200; n++) {
      const len = (n * 7) % 60;
      const fCnt32 = (n * 104_729) >>> 0;
      const payload = Buffer.from(Array.from({ length: len }, (_, i) => (i * 31 + n) & 0xff));
      for (const down of [false, true]) {
        const build = down ? buildDataDown : buildDataUp;
        const phy = build(
          {
            devAddr,
            fCnt32,
            confirmed: false,
            ack: false,
            fPending: false,
            fPort: n % 2 ? 0 : 1 + (n % 200),
            payload,
          },
          app,
          nwk,
        );
        const p = parse(phy);
        const ours = decryptPayload(p, app, nwk, fCnt32);
        expect(ours.equals(payload)).toBe(true);
        if (len > 0) expect(ours.equals(lora.decrypt(p, app, nwk, fCntMsb(fCnt32)))).toBe(true);
      }
    }
  });

  it("builds downlinks the device can verify, with and without FPort", () => {
    const phy = buildDataDown(
      {
        devAddr,
        fCnt32: 0x10005,
        confirmed: true,
        ack: true,
        fPending: true,
        fOpts: Buffer.from([0x02, 10, 1]),
        fPort: 3,
        payload: Buffer.from("hi"),
      },
      app,
      nwk,
    );
    const p = parse(phy);
    expect(p.getMType()).toBe("Confirmed Data Down");
    expect(p.getFCtrlACK()).toBe(true);
    expect(p.getFCtrlFPending()).toBe(true);
    expect(p.FOpts!.toString("hex")).toBe("020a01");
    expect(verifyDataMic(p, nwk, 0x10005)).toBe(true);
    expect(decryptPayload(p, app, nwk, 0x10005).toString()).toBe("hi");
    const empty = parse(
      buildDataDown({ devAddr, fCnt32: 7, confirmed: false, ack: true, fPending: false }, app, nwk),
    );
    expect(empty.getFPort()).toBeNull();
    expect(verifyDataMic(empty, nwk, 7)).toBe(true);
  });

  it("join request → join accept round trip (pitfalls 2 and 3)", () => {
    const appKey = hex("98929b92c49edba9676d646d3b612456");
    const jr = parse(
      buildJoinRequest(hex("70b3d57ed0000001"), hex("0004a30b001c0530"), 0xf18e, appKey),
    );
    expect(verifyJoinRequestMic(jr, appKey)).toBe(true);
    expect(jr.DevNonce!.toString("hex")).toBe("f18e");
    const wire = buildJoinAccept(
      {
        joinNonce: 0x376338,
        netId: hex("aabbcc"),
        devAddr: hex("26011234"),
        rx1DrOffset: 0,
        rx2Dr: 0,
        rxDelay: 1,
      },
      appKey,
    );
    // Encrypted on the wire: the DevAddr must not appear in clear.
    expect(wire.includes(hex("34120126"))).toBe(false);
    const clear = openJoinAccept(wire, appKey);
    expect(clear.micOk).toBe(true);
    expect(clear.devAddr.toString("hex")).toBe("26011234");
    expect(clear.joinNonce.toString("hex")).toBe("376338");
    expect(clear.rxDelay).toBe(1);
    // Keys derived on both sides from these values match the vector's.
    const k = sessionKeys(appKey, clear.netId, clear.joinNonce, jr.DevNonce!);
    expect(k.nwkSKey.toString("hex")).toBe("4e3d6e6afbcc67af2ba3c8e8ec4acf4b");
  });
});
