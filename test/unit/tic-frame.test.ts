/**
 * TIC framing and groups against drivers/tic/testcases/tic.json: every group verifies, corrupting any
 * byte of a group is detected, and a stream split at random byte boundaries yields the same frames.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type TicFrame, TicStreamParser, checksum, parseGroup } from "../../drivers/tic/frame.js";
import { ticFrame as encodeFrame, ticGroup as encodeGroup } from "../../sim/tic/wire.js";
import { decodeGroup, parseHorodate } from "../../drivers/tic/labels.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const vectors = JSON.parse(
  readFileSync(join(repoRoot, "drivers", "tic", "testcases", "tic.json"), "utf8"),
) as {
  historicGroups: string[];
  standardGroups: string[];
};
const all = [
  ...vectors.historicGroups.map((g) => ["historic", g] as const),
  ...vectors.standardGroups.map((g) => ["standard", g] as const),
];

/** Deterministic PRNG (mulberry32) so a failure is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function frameOf(groups: string[]): Buffer {
  return Buffer.concat([
    Buffer.from([0x02]),
    ...groups.map((g) => Buffer.from(`\n${g}\r`, "latin1")),
    Buffer.from([0x03]),
  ]);
}

function parseAll(chunks: Buffer[]): TicFrame[] {
  const out: TicFrame[] = [];
  const p = new TicStreamParser((f) => out.push(f));
  for (const c of chunks) p.feed(c);
  return out;
}

describe("TIC groups from tic.json", () => {
  it.each(all)("%s group %j verifies and decodes", (mode, g) => {
    const r = parseGroup(Buffer.from(g, "latin1"));
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.mode).toBe(mode);
    const d = decodeGroup(mode, r.group);
    expect(d.ok, JSON.stringify(d)).toBe(true);
  });

  it("decodes values with SenML units", () => {
    const frames = parseAll([frameOf(vectors.historicGroups), frameOf(vectors.standardGroups)]);
    const dec = frames
      .flatMap((f) => f.groups.map((g) => decodeGroup(f.mode, g)))
      .map((d) => (d.ok ? d.decoded : undefined));
    const by = Object.fromEntries(dec.map((d) => [d!.label, d!]));
    expect(by.HCHC).toMatchObject({ point: "hchc", value: 723392, unit: "Wh" });
    expect(by.PAPP).toMatchObject({ value: 180, unit: "VA" });
    expect(by.IINST).toMatchObject({ value: 1, unit: "A" });
    expect(by.PTEC).toMatchObject({ value: "HP..", point: "ptec" });
    expect(by.ADCO).toMatchObject({ value: "021528603314" });
    expect(by.URMS1).toMatchObject({ value: 228, unit: "V" });
    expect(by.DATE).toMatchObject({ value: "2018-07-16T10:34:23+02:00", degradedClock: false });
    expect(by.SMAXSN).toMatchObject({ value: 21, unit: "VA", time: "2018-07-16T06:34:17+02:00" });
    expect(frames.map((f) => f.mode)).toEqual(["historic", "standard"]);
    expect(frames.every((f) => f.dropped === 0)).toBe(true);
  });

  it("keeps a space checksum (never trims)", () => {
    const g = vectors.historicGroups.find((x) => x.startsWith("HCHC"))!;
    expect(g.endsWith(" ")).toBe(true);
    expect(parseGroup(Buffer.from(g.trimEnd(), "latin1")).ok).toBe(false);
    expect(String.fromCharCode(checksum(Buffer.from("HCHC 000723392")))).toBe(" ");
  });

  it("reads the season flag and a degraded clock", () => {
    expect(parseHorodate("H181224235959")).toEqual({
      iso: "2018-12-24T23:59:59+01:00",
      degraded: false,
      season: "H",
    });
    expect(parseHorodate("e180716103423")).toEqual({
      iso: "2018-07-16T10:34:23+02:00",
      degraded: true,
      season: "E",
    });
    // A space: no season in this group; the driver decides from the frame's other dates.
    expect(parseHorodate(" 180716103423")).toEqual({
      iso: "2018-07-16T10:34:23",
      degraded: true,
    });
    expect(parseHorodate("E181316103423")).toBeUndefined();
  });

  it("the simulator's own encoder writes groups the way the vectors are written", () => {
    expect(encodeGroup("historic", "HCHC", "000723392").toString("latin1")).toBe(
      "\nHCHC 000723392  \r",
    );
    expect(encodeGroup("standard", "SMAXSN", "00021", "E180716063417").toString("latin1")).toBe(
      "\nSMAXSN\tE180716063417\t00021\t9\r",
    );
    expect(encodeGroup("standard", "DATE", "", "E180716103423").toString("latin1")).toBe(
      "\nDATE\tE180716103423\t\tB\r",
    );
  });
});

describe("corruption", () => {
  it("detects every single-byte corruption of every vector group (all 255 XOR masks)", () => {
    let cases = 0;
    const leaks: string[] = [];
    for (const [mode, g] of all) {
      const bytes = Buffer.from(g, "latin1");
      for (let pos = 0; pos < bytes.length; pos++) {
        for (let x = 1; x < 256; x++) {
          const c = Buffer.from(bytes);
          c[pos] = c[pos]! ^ x;
          const frames = parseAll([
            Buffer.concat([Buffer.from([0x02, 0x0a]), c, Buffer.from([0x0d, 0x03])]),
          ]);
          const ok = frames
            .flatMap((f) => f.groups.map((gr) => decodeGroup(mode, gr)))
            .filter((d) => d.ok);
          cases++;
          if (ok.length > 0)
            leaks.push(
              `${JSON.stringify(g)} byte ${pos} ^ 0x${x.toString(16)} → ${JSON.stringify(ok)}`,
            );
        }
      }
    }
    expect(cases).toBeGreaterThan(50_000);
    expect(leaks.slice(0, 10)).toEqual([]);
  });

  it("counts and drops a bad group but keeps the good ones of the frame", () => {
    const groups = [...vectors.historicGroups];
    groups[3] = groups[3]!.replace("723392", "723393");
    const [f] = parseAll([frameOf(groups)]);
    expect(f!.dropped).toBe(1);
    expect(f!.groups.map((g) => g.label)).not.toContain("HCHC");
    expect(f!.groups).toHaveLength(groups.length - 1);
    expect(f!.errors[0]).toMatch(/checksum/);
  });

  it("drops groups with non-printable bytes and aborts a frame on EOT", () => {
    const p = new TicStreamParser(() => undefined);
    p.feed(
      Buffer.concat([
        Buffer.from([0x02]),
        Buffer.from("\nADCO 021528603314 :\r\nIINST 0"),
        Buffer.from([0x04]),
      ]),
    );
    expect(p.counters).toMatchObject({ frames: 0, abortedFrames: 1 });
    const [f] = parseAll([
      Buffer.concat([
        Buffer.from([0x02]),
        Buffer.from("\nIINST 0\x801 X\r", "latin1"),
        Buffer.from([0x03]),
      ]),
    ]);
    expect(f!.dropped).toBe(1);
    expect(f!.errors[0]).toMatch(/non-printable byte 0x80/);
  });
});

describe("stream split at random byte boundaries", () => {
  const stream = Buffer.concat([
    Buffer.from("garbage before the first STX"),
    frameOf(vectors.historicGroups),
    Buffer.concat([Buffer.from([0x02]), Buffer.from("\nADCO 0215"), Buffer.from([0x04])]), // aborted
    frameOf(vectors.standardGroups),
    encodeFrame([
      encodeGroup("historic", "PAPP", "01234"),
      encodeGroup("historic", "HCHP", "001742239"),
    ]),
    frameOf(["HCHC 000723393  "]), // bad checksum
    frameOf(vectors.historicGroups),
  ]);
  const whole = parseAll([stream]);

  it("the unsplit stream gives the expected frames", () => {
    expect(whole).toHaveLength(5);
    expect(whole[3]!.dropped).toBe(1);
  });

  it("200 random splittings give identical frames", () => {
    const rand = rng(0xec10);
    for (let run = 0; run < 200; run++) {
      const chunks: Buffer[] = [];
      let i = 0;
      while (i < stream.length) {
        const n = 1 + Math.floor(rand() * (run % 4 === 0 ? 3 : 64));
        chunks.push(stream.subarray(i, i + n));
        i += n;
      }
      expect(parseAll(chunks)).toEqual(whole);
    }
  });
});
