/**
 * M-Bus master against the simulated slaves, in process (the serial leg is covered by the
 * integration tests): FCB handling, multi-telegram reads, secondary addressing, scans, and bad
 * frames as clear errors.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseUserData } from "../../drivers/mbus/data.js";
import {
  hexToBytes,
  longFrame,
  parseFrame,
  scanFrame,
  shortFrame,
} from "../../drivers/mbus/frame.js";
import { MbusMaster, selectPayload } from "../../drivers/mbus/master.js";
import { heatMeter, waterMeter } from "../../sim/mbus/meters.js";
import { MbusSlaveSim, type SimMeter, meterFromFrames } from "../../sim/mbus/slave.js";
import { dib } from "../../sim/mbus/telegram.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const corpus = join(repoRoot, "drivers", "mbus", "testcases", "libmbus");
const frame = (name: string) => hexToBytes(readFileSync(join(corpus, `${name}.hex`), "utf8"));

/** Master and slaves wired back to back; `tap` sees (and may drop) every slave answer. */
function bus(
  meters: SimMeter[],
  tap?: (b: Buffer) => boolean,
  opts: { corruptEvery?: number; collisions?: "overlap" | "skewed" } = {},
) {
  const sent: Buffer[] = [];
  // The two ends refer to each other: the master is created right after the slave.
  const ref: { master?: MbusMaster } = {};
  const slave = new MbusSlaveSim(
    meters,
    (b) => {
      if (tap && !tap(b)) return;
      setImmediate(() => ref.master!.onData(b));
    },
    opts,
  );
  const master = new MbusMaster(
    async (b) => {
      sent.push(b);
      setImmediate(() => slave.feed(b));
    },
    { timeoutMs: 80, retries: 1 },
  );
  ref.master = master;
  return { master, slave, sent };
}

describe("frames", () => {
  it("round-trips short and long frames and computes checksums", () => {
    expect(shortFrame(0x5b, 1).toString("hex")).toBe("105b015c16");
    const lf = longFrame(0x53, 0xfd, 0x52, selectPayload({ id: "1234FFFF" }));
    expect(lf.subarray(0, 15).toString("hex")).toBe("680b0b6853fd52ffff3412ffffffff");
    expect(lf[15]).toBe((0x53 + 0xfd + 0x52 + 0xff * 2 + 0x34 + 0x12 + 0xff * 4) & 0xff);
    expect(parseFrame(lf)).toMatchObject({ kind: "long", control: 0x53, address: 0xfd, ci: 0x52 });
  });

  const good = frame("EDC");
  const cases: [string, Buffer, RegExp][] = [
    [
      "bad checksum",
      Buffer.concat([good.subarray(0, -2), Buffer.from([good[good.length - 2]! ^ 1, 0x16])]),
      /checksum 0x.. != computed/,
    ],
    [
      "length fields differ",
      Buffer.concat([good.subarray(0, 2), Buffer.from([good[2]! - 1]), good.subarray(3)]),
      /length fields differ/,
    ],
    ["truncated", good.subarray(0, good.length - 10), /truncated/],
    ["no stop byte", Buffer.concat([good.subarray(0, -1), Buffer.from([0x17])]), /no stop byte/],
    ["trailing bytes", Buffer.concat([good, Buffer.from([0x00])]), /after the stop byte/],
    ["not a frame", Buffer.from([0x42, 0x00]), /not a frame start/],
  ];
  it.each(cases)("rejects a frame with %s (EE0405)", (_n, bytes, re) => {
    expect(() => parseFrame(bytes)).toThrow(/EE0405/);
    expect(() => parseFrame(bytes)).toThrow(re);
  });

  it("rejects a premature end of records and too many DIFE with clear errors", () => {
    // Record announces 4 data bytes, telegram ends after 2.
    const hdr = Buffer.from("785634121111010700000000", "hex");
    const premature = longFrame(
      0x08,
      1,
      0x72,
      Buffer.concat([hdr, Buffer.from([0x04, 0x13, 0x01, 0x02])]),
    );
    expect(() => parseUserData(parseFrame(premature))).toThrow(
      /EE0405 .*premature end of telegram/,
    );
    const many = longFrame(
      0x08,
      1,
      0x72,
      Buffer.concat([hdr, Buffer.from([0x84, ...Array(11).fill(0x80), 0x00, 0x13, 1, 2, 3, 4])]),
    );
    expect(() => parseUserData(parseFrame(many))).toThrow(/more than 10 DIFE/);
    const noVif = longFrame(0x08, 1, 0x72, Buffer.concat([hdr, Buffer.from([0x04])]));
    expect(() => parseUserData(parseFrame(noVif))).toThrow(/ends before the VIF/);
    expect(() => parseUserData(parseFrame(longFrame(0x08, 1, 0x72, hdr.subarray(0, 8))))).toThrow(
      /fixed header needs 12 bytes/,
    );
    expect(() => parseUserData(parseFrame(longFrame(0x08, 1, 0x51, hdr)))).toThrow(/CI field 0x51/);
  });

  it("scans a byte stream with garbage and split frames", () => {
    const buf = Buffer.concat([Buffer.from([0x00, 0xff]), Buffer.from([0xe5])]);
    expect(scanFrame(buf)).toMatchObject({ status: "invalid", skip: 1 });
    expect(scanFrame(frame("EDC").subarray(0, 20))).toEqual({ status: "need" });
  });

  it("encodes storage, tariff and sub-unit in DIFEs the way the decoder reads them", () => {
    const hdr = Buffer.from("785634121111010700000000", "hex");
    const rec = Buffer.concat([
      dib(0x04, { storage: 5, tariff: 2, subunit: 1 }),
      Buffer.from([0x13, 1, 0, 0, 0]),
    ]);
    const d = parseUserData(parseFrame(longFrame(0x08, 1, 0x72, Buffer.concat([hdr, rec]))));
    expect(d.records[0]).toMatchObject({
      storage: 5,
      tariff: 2,
      subunit: 1,
      unit: "m3",
      value: 0.001,
      quantity: "Volume",
    });
  });
});

describe("master and simulated slaves", () => {
  it("reads a two-telegram heat meter: FCB toggles, records of both telegrams", async () => {
    const { master, sent } = bus([heatMeter(1, "12345678")]);
    const t = await master.readAll(1);
    expect(t).toHaveLength(2);
    expect(t[0]!.moreRecordsFollow).toBe(true);
    expect(t[1]!.moreRecordsFollow).toBe(false);
    expect(t[0]!.header).toMatchObject({ id: "12345678", manufacturer: "ECL", medium: 4 });
    const energy = t[0]!.records[0]!;
    expect(energy).toMatchObject({ quantity: "Energy", unit: "Wh", storage: 0 });
    expect(energy.value as number).toBeGreaterThanOrEqual(1_234_000);
    expect(t[1]!.records[0]).toMatchObject({ quantity: "Energy", storage: 1, value: 1_100_000 });
    // SND_NKE, then REQ_UD2 with FCB=1 then FCB=0.
    expect(sent.map((b) => b.toString("hex"))).toEqual(["1040014116", "107b017c16", "105b015c16"]);
  });

  it("repeats a request with the same FCB after a lost answer and gets the same telegram", async () => {
    let drop = true;
    const answers: Buffer[] = [];
    const { master, sent } = bus([heatMeter(1, "12345678")], (b) => {
      answers.push(b);
      if (b.length > 1 && drop) {
        drop = false;
        return false; // the first RSP_UD is lost on the line
      }
      return true;
    });
    const t = await master.readAll(1);
    expect(t).toHaveLength(2);
    const reqs = sent.map((b) => b.toString("hex")).slice(1);
    expect(reqs).toEqual(["107b017c16", "107b017c16", "105b015c16"]);
    expect(answers[1]!.equals(answers[2]!)).toBe(true); // repeated, not advanced
  });

  it("a corrupted answer is retried, and reported as a frame error when it persists", async () => {
    const { master } = bus([waterMeter(2, "87654321")], undefined, { corruptEvery: 1 });
    await expect(master.readAll(2)).rejects.toThrow(
      /EE0405 REQ_UD2 to address 2: invalid answer \(long frame checksum/,
    );
    expect(master.counters.badFrames).toBeGreaterThanOrEqual(2);
    const silent = bus([]);
    await expect(silent.master.readAll(9)).rejects.toThrow(
      /EE0403 REQ_UD2 to address 9: no answer within 80 ms/,
    );
  });

  it("selects by secondary address with wildcards and reports collisions", async () => {
    const { master } = bus([heatMeter(1, "12345678"), waterMeter(2, "12349999")]);
    expect(await master.select({ id: "12345678" })).toBe("selected");
    // Two ACKs sent at once overlap into one clean E5: only the read shows the collision.
    expect(await master.select({ id: "1234FFFF" })).toBe("selected");
    expect(await master.select({ id: "99999999" })).toBe("none");
    const t = await master.readSecondary("12349999");
    expect(t[0]!.header.id).toBe("12349999");
    expect(t).toHaveLength(1);
    const heat = await master.readSecondary("12345678");
    expect(heat).toHaveLength(2); // both telegrams of the heat meter
    await expect(master.readSecondary("1234FFFF")).rejects.toThrow(/collision/);
  });

  it("ACKs a few bits apart are a collision at the selection already", async () => {
    const { master } = bus([heatMeter(1, "12345678"), waterMeter(2, "12349999")], undefined, {
      collisions: "skewed",
    });
    expect(await master.select({ id: "1234FFFF" })).toBe("collision");
  });

  it("a scan finds three meters whose ACKs overlap into one clean E5 (libmbus probe)", async () => {
    const meters = [heatMeter(1, "12345678"), waterMeter(2, "12345679"), waterMeter(3, "12349999")];
    const { master, slave } = bus(meters);
    const sec = await master.scanSecondary();
    expect(sec.map((s) => [s.id, s.error])).toEqual([
      ["12345678", undefined],
      ["12345679", undefined],
      ["12349999", undefined],
    ]);
    expect(slave.stats.collisions).toBeGreaterThan(0);
  });

  it("scans primary and secondary address spaces", async () => {
    const meters = [
      heatMeter(1, "12345678"),
      waterMeter(7, "12349999"),
      meterFromFrames(12, [frame("EDC")]),
    ];
    const { master } = bus(meters);
    const prim = await master.scanPrimary(0, 15);
    expect(prim.map((p) => [p.address, p.data?.header.id])).toEqual([
      [1, "12345678"],
      [7, "12349999"],
      [12, "11120895"],
    ]);
    const sec = await master.scanSecondary();
    expect(sec.map((s) => s.id).sort()).toEqual(["11120895", "12345678", "12349999"]);
  });

  it("replays corpus frames at any address", async () => {
    const { master } = bus([meterFromFrames(5, [frame("kamstrup_multical_601")])]);
    const [d] = await master.readAll(5);
    expect(d!.header.manufacturer).toBe("KAM");
    expect(d!.records.length).toBeGreaterThan(5);
  });
});
