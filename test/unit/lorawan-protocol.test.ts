/** Semtech UDP datagrams, MAC commands and the class A window choice, without I/O. */
import { describe, expect, it } from "vitest";
import {
  answerMac,
  gpsTimeMs,
  parseDownlinkMac,
  parseUplinkMac,
} from "../../drivers/lorawan/mac.js";
import { DownlinkScheduler } from "../../drivers/lorawan/downlink.js";
import type { GatewayServer } from "../../drivers/lorawan/gateways.js";
import {
  MalformedDatagram,
  build,
  parseDatagram,
  parseDatr,
} from "../../drivers/lorawan/semtech.js";

const EUI = "aa555a0000000001";
const reason = (buf: Buffer) => {
  try {
    parseDatagram(buf);
    return "ok";
  } catch (e) {
    return (e as MalformedDatagram).reason;
  }
};

describe("Semtech UDP datagrams", () => {
  it("parses PUSH_DATA with rxpk and stat, v1 and v2", () => {
    for (const version of [1, 2]) {
      const d = parseDatagram(
        build.pushData(version, 0xbeef, EUI, {
          rxpk: [
            {
              tmst: 4294967295,
              freq: 868.1,
              datr: "SF12BW125",
              rssi: -120,
              lsnr: -15.5,
              stat: 1,
              size: 3,
              data: "AQID",
              tmms: 12,
            },
          ],
          stat: { rxnb: 3 },
        }),
      );
      expect(d).toMatchObject({
        type: "push_data",
        version,
        token: 0xbeef,
        gatewayEui: EUI,
        stat: { rxnb: 3 },
        badRxpk: 0,
      });
      if (d.type !== "push_data") throw new Error();
      expect(d.rxpk[0]).toMatchObject({
        tmst: 4294967295,
        freq: 868.1,
        datr: "SF12BW125",
        rssi: -120,
        lsnr: -15.5,
        tmms: 12,
        size: 3,
      });
      expect([...d.rxpk[0]!.data]).toEqual([1, 2, 3]);
    }
  });

  it("keeps the good rxpk entries of a datagram with a bad one", () => {
    const d = parseDatagram(
      build.pushData(2, 1, EUI, {
        rxpk: [
          { tmst: 1, freq: 868.1, datr: "SF7BW125", rssi: -1, data: "AQID" },
          { tmst: 1, data: "%%%" },
        ],
      }),
    );
    expect(d).toMatchObject({ type: "push_data", badRxpk: 1 });
  });

  it("parses PULL_DATA and TX_ACK (empty body and error)", () => {
    expect(parseDatagram(build.pullData(2, 7, EUI))).toEqual({
      type: "pull_data",
      version: 2,
      token: 7,
      gatewayEui: EUI,
    });
    expect(parseDatagram(build.txAck(9, EUI, "NONE"))).toMatchObject({
      type: "tx_ack",
      token: 9,
      error: "NONE",
    });
    expect(parseDatagram(build.txAck(9, EUI, "TOO_LATE"))).toMatchObject({
      type: "tx_ack",
      error: "TOO_LATE",
    });
  });

  it("builds ACKs and PULL_RESP (token 0 in v1)", () => {
    expect(build.pushAck(2, 0x1234).toString("hex")).toBe("02123401");
    expect(build.pullAck(1, 0x1234).toString("hex")).toBe("01123404");
    const txpk = {
      imme: false,
      tmst: 5,
      freq: 869.525,
      rfch: 0,
      powe: 14,
      modu: "LORA" as const,
      datr: "SF12BW125",
      codr: "4/5",
      ipol: true,
      size: 1,
      data: "AA==",
    };
    expect(build.pullResp(1, 0x1234, txpk).subarray(0, 4).toString("hex")).toBe("01000003");
    expect(parseDatagram(build.pullResp(2, 0x1234, txpk))).toMatchObject({
      type: "pull_resp",
      token: 0x1234,
      txpk,
    });
  });

  it("refuses malformed datagrams with a reason", () => {
    const push = (body: string) =>
      Buffer.concat([Buffer.from("02000100", "hex"), Buffer.from(EUI, "hex"), Buffer.from(body)]);
    expect(reason(Buffer.alloc(3))).toBe("short");
    expect(reason(Buffer.from("0200010002", "hex"))).toBe("short"); // PUSH_DATA without EUI
    expect(reason(Buffer.from("03000100", "hex"))).toBe("version");
    expect(reason(Buffer.from("020001ff", "hex"))).toBe("identifier");
    expect(reason(push("{"))).toBe("json");
    expect(reason(push("[1]"))).toBe("json");
    expect(
      reason(
        push(
          JSON.stringify({ rxpk: [{ tmst: 1, freq: 1, datr: "SF7BW125", rssi: 0, data: "A" }] }),
        ),
      ),
    ).toBe("base64");
    expect(reason(push(JSON.stringify({ rxpk: {} })))).toBe("field");
    expect(reason(push(JSON.stringify({ rxpk: [{ tmst: "1" }] })))).toBe("field");
  });

  it("reads data rates", () => {
    expect(parseDatr("SF9BW125")).toEqual({ sf: 9, bw: 125 });
    expect(parseDatr("50000")).toBeUndefined();
  });
});

describe("MAC commands", () => {
  it("parses device commands and stops at an unknown CID", () => {
    const p = parseUplinkMac(Buffer.from("0203070d06ff20", "hex"));
    expect(p.commands.map((c) => c.name)).toEqual([
      "LinkCheckReq",
      "LinkADRAns",
      "DeviceTimeReq",
      "DevStatusAns",
    ]);
    expect(p.commands[3]!.payload.toString("hex")).toBe("ff20");
    expect(parseUplinkMac(Buffer.from("02ee00", "hex"))).toMatchObject({
      commands: [{ name: "LinkCheckReq" }],
      error: "unknown MAC command 0xee at byte 1",
    });
    expect(parseUplinkMac(Buffer.from("06ff", "hex")).error).toBe(
      "DevStatusAns truncated at byte 0",
    );
  });

  it("answers LinkCheckReq and DeviceTimeReq (§5.2, §5.9)", () => {
    const at = Date.UTC(2026, 0, 1, 0, 0, 0, 500);
    const ans = answerMac(parseUplinkMac(Buffer.from("020d", "hex")).commands, {
      sf: 12,
      snr: -10,
      gateways: 3,
      receivedAt: at,
    });
    const back = parseDownlinkMac(ans).commands;
    expect(back.map((c) => c.name)).toEqual(["LinkCheckAns", "DeviceTimeAns"]);
    expect([...back[0]!.payload]).toEqual([10, 3]); // -10 dB is 10 dB above SF12's -20 dB floor
    const gps = gpsTimeMs(at);
    expect(back[1]!.payload.readUInt32LE(0)).toBe(Math.floor(gps / 1000));
    expect(back[1]!.payload[4]).toBe(128); // half a second
    // 2026-01-01 is 1451260818 GPS seconds (epoch 1980-01-06, 18 leap seconds).
    expect(Math.floor(gps / 1000)).toBe(1451260818);
  });
});

describe("class A windows", () => {
  const server = { gateways: new Map(), sendTxpk: () => 1 } as unknown as GatewayServer;
  const s = new DownlinkScheduler(server, {
    rx1DelayS: 1,
    rx2Frequency: 869.525,
    rx2Dr: 0,
    txPower: 14,
  });
  const up = {
    gatewayEui: EUI,
    receivedAt: 1_000_000,
    rx: {
      tmst: 4294000000,
      freq: 868.3,
      datr: "SF9BW125",
      rssi: -90,
      lsnr: 2,
      stat: 1,
      modu: "LORA",
      size: 1,
      data: Buffer.alloc(1),
    },
  };
  it("RX1 on the uplink channel and data rate, tmst wrapping at 2^32", () => {
    expect(s.txpk(Buffer.from([1]), up, "rx1", 1)).toMatchObject({
      tmst: (4294000000 + 1_000_000) % 2 ** 32,
      freq: 868.3,
      datr: "SF9BW125",
      ipol: true,
      imme: false,
    });
    expect(s.txpk(Buffer.from([1]), up, "rx2", 5)).toMatchObject({
      tmst: (4294000000 + 6_000_000) % 2 ** 32,
      freq: 869.525,
      datr: "SF12BW125",
    });
  });
  it("chooses RX2 when RX1 can no longer be reached, and nothing when both passed", () => {
    expect(s.windowFor(up, 1, up.receivedAt + 500)).toBe("rx1");
    expect(s.windowFor(up, 1, up.receivedAt + 950)).toBe("rx2");
    expect(s.windowFor(up, 1, up.receivedAt + 1950)).toBeUndefined();
    expect(s.windowFor(up, 5, up.receivedAt + 4800)).toBe("rx1");
  });
});
