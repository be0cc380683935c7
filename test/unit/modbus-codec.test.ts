/**
 * Golden encode/decode for every type × byte/word order. Expected registers are written out by
 * hand from the order definitions (README, "Byte and word order"), not computed by the codec.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  decodeRegisters,
  EncodeError,
  shortestFloat32,
  encodeRegisters,
  scaleValue,
  unscale,
} from "../../drivers/modbus/codec.js";
import type { ByteOrder, PointType } from "../../drivers/modbus/schema.js";

type Case = {
  type: PointType;
  value: number | string;
  length?: number;
  regs: Record<ByteOrder, number[]>;
};

const cases: Case[] = [
  {
    type: "uint16",
    value: 0x1234,
    regs: { ABCD: [0x1234], CDAB: [0x1234], BADC: [0x3412], DCBA: [0x3412] },
  },
  {
    type: "int16",
    value: -2,
    regs: { ABCD: [0xfffe], CDAB: [0xfffe], BADC: [0xfeff], DCBA: [0xfeff] },
  },
  {
    type: "int16",
    value: -32768,
    regs: { ABCD: [0x8000], CDAB: [0x8000], BADC: [0x0080], DCBA: [0x0080] },
  },
  {
    type: "uint32",
    value: 0x11223344,
    regs: {
      ABCD: [0x1122, 0x3344],
      CDAB: [0x3344, 0x1122],
      BADC: [0x2211, 0x4433],
      DCBA: [0x4433, 0x2211],
    },
  },
  {
    type: "int32",
    value: -2,
    regs: {
      ABCD: [0xffff, 0xfffe],
      CDAB: [0xfffe, 0xffff],
      BADC: [0xffff, 0xfeff],
      DCBA: [0xfeff, 0xffff],
    },
  },
  {
    type: "int32",
    value: -123456789,
    regs: {
      ABCD: [0xf8a4, 0x32eb],
      CDAB: [0x32eb, 0xf8a4],
      BADC: [0xa4f8, 0xeb32],
      DCBA: [0xeb32, 0xa4f8],
    },
  },
  {
    type: "float32",
    value: 230,
    regs: {
      ABCD: [0x4366, 0x0000],
      CDAB: [0x0000, 0x4366],
      BADC: [0x6643, 0x0000],
      DCBA: [0x0000, 0x6643],
    },
  },
  {
    type: "float32",
    value: -1.5,
    regs: {
      ABCD: [0xbfc0, 0x0000],
      CDAB: [0x0000, 0xbfc0],
      BADC: [0xc0bf, 0x0000],
      DCBA: [0x0000, 0xc0bf],
    },
  },
  {
    type: "float32",
    value: Infinity,
    regs: {
      ABCD: [0x7f80, 0x0000],
      CDAB: [0x0000, 0x7f80],
      BADC: [0x807f, 0x0000],
      DCBA: [0x0000, 0x807f],
    },
  },
  {
    type: "float32",
    value: -Infinity,
    regs: {
      ABCD: [0xff80, 0x0000],
      CDAB: [0x0000, 0xff80],
      BADC: [0x80ff, 0x0000],
      DCBA: [0x0000, 0x80ff],
    },
  },
  // 64-bit integers are exact below 2^53 (they become JS numbers).
  {
    type: "uint64",
    value: 0x0011223344556677,
    regs: {
      ABCD: [0x0011, 0x2233, 0x4455, 0x6677],
      CDAB: [0x6677, 0x4455, 0x2233, 0x0011],
      BADC: [0x1100, 0x3322, 0x5544, 0x7766],
      DCBA: [0x7766, 0x5544, 0x3322, 0x1100],
    },
  },
  {
    type: "int64",
    value: -2,
    regs: {
      ABCD: [0xffff, 0xffff, 0xffff, 0xfffe],
      CDAB: [0xfffe, 0xffff, 0xffff, 0xffff],
      BADC: [0xffff, 0xffff, 0xffff, 0xfeff],
      DCBA: [0xfeff, 0xffff, 0xffff, 0xffff],
    },
  },
  {
    type: "int64",
    value: 1234567890123,
    regs: {
      ABCD: [0x0000, 0x011f, 0x71fb, 0x04cb],
      CDAB: [0x04cb, 0x71fb, 0x011f, 0x0000],
      BADC: [0x0000, 0x1f01, 0xfb71, 0xcb04],
      DCBA: [0xcb04, 0xfb71, 0x1f01, 0x0000],
    },
  },
  {
    type: "float64",
    value: 1,
    regs: {
      ABCD: [0x3ff0, 0, 0, 0],
      CDAB: [0, 0, 0, 0x3ff0],
      BADC: [0xf03f, 0, 0, 0],
      DCBA: [0, 0, 0, 0xf03f],
    },
  },
  {
    type: "float64",
    value: -2.5,
    regs: {
      ABCD: [0xc004, 0, 0, 0],
      CDAB: [0, 0, 0, 0xc004],
      BADC: [0x04c0, 0, 0, 0],
      DCBA: [0, 0, 0, 0x04c0],
    },
  },
  // Strings: only the byte swap applies; an odd length leaves a NUL in the last low byte.
  {
    type: "string",
    value: "ABC",
    length: 2,
    regs: {
      ABCD: [0x4142, 0x4300],
      CDAB: [0x4142, 0x4300],
      BADC: [0x4241, 0x0043],
      DCBA: [0x4241, 0x0043],
    },
  },
  {
    type: "string",
    value: "SDM630",
    length: 4,
    regs: {
      ABCD: [0x5344, 0x4d36, 0x3330, 0x0000],
      CDAB: [0x5344, 0x4d36, 0x3330, 0x0000],
      BADC: [0x4453, 0x364d, 0x3033, 0x0000],
      DCBA: [0x4453, 0x364d, 0x3033, 0x0000],
    },
  },
];

const orders: ByteOrder[] = ["ABCD", "CDAB", "BADC", "DCBA"];

describe("modbus codec: golden type × order", () => {
  for (const c of cases)
    for (const order of orders) {
      const p = { type: c.type, length: c.length };
      it(`${c.type} ${String(c.value)} ${order}`, () => {
        expect(encodeRegisters(c.value, p, order)).toEqual(c.regs[order]);
        expect(decodeRegisters(c.regs[order], p, order)).toBe(c.value);
      });
    }

  it("decodes NaN for float32 and float64 in every order", () => {
    for (const order of orders) {
      const f32 = encodeRegisters(NaN, { type: "float32" }, order);
      expect(decodeRegisters(f32, { type: "float32" }, order)).toBeNaN();
      expect(
        decodeRegisters(
          encodeRegisters(NaN, { type: "float64" }, order),
          { type: "float64" },
          order,
        ),
      ).toBeNaN();
    }
    expect(encodeRegisters(NaN, { type: "float32" }, "ABCD")).toEqual([0x7fc0, 0x0000]);
  });

  it("trims NUL and space padding of strings and keeps odd lengths", () => {
    expect(decodeRegisters([0x4142, 0x4320, 0x2020], { type: "string", length: 3 }, "ABCD")).toBe(
      "ABC",
    );
    expect(decodeRegisters([0x4100], { type: "string", length: 1 }, "ABCD")).toBe("A");
    expect(encodeRegisters("A", { type: "string", length: 1 }, "ABCD")).toEqual([0x4100]);
    expect(() => encodeRegisters("ABCDE", { type: "string", length: 2 }, "ABCD")).toThrow(
      EncodeError,
    );
  });

  it("reads and writes one bit of a register without touching the others", () => {
    expect(decodeRegisters([0b1010], { type: "bit", bit: 1 }, "ABCD")).toBe(1);
    expect(decodeRegisters([0b1010], { type: "bit", bit: 2 }, "ABCD")).toBe(0);
    expect(encodeRegisters(1, { type: "bit", bit: 0 }, "ABCD", 0b1010)).toEqual([0b1011]);
    expect(encodeRegisters(0, { type: "bit", bit: 3 }, "ABCD", 0b1010)).toEqual([0b0010]);
    expect(encodeRegisters(1, { type: "bit", bit: 15 }, "ABCD", 0)).toEqual([0x8000]);
  });

  it("refuses values outside the type's range or of the wrong kind", () => {
    expect(() => encodeRegisters(65536, { type: "uint16" }, "ABCD")).toThrow(
      /outside the uint16 range/,
    );
    expect(() => encodeRegisters(-1, { type: "uint32" }, "ABCD")).toThrow(EncodeError);
    expect(() => encodeRegisters(1.5, { type: "int16" }, "ABCD")).toThrow(/integer/);
    expect(() => encodeRegisters("x", { type: "int16" }, "ABCD")).toThrow(EncodeError);
    expect(() => encodeRegisters(2, { type: "bit", bit: 0 }, "ABCD")).toThrow(EncodeError);
  });

  it("refuses every value an encoding cannot represent, naming the range (issue 14 item 5)", () => {
    const f32 = { type: "float32" as const };
    expect(() => encodeRegisters(1e300, f32, "ABCD")).toThrow(
      "1e+300 is outside the float32 range ±3.4028234663852886e+38",
    );
    expect(() => encodeRegisters(3.5e38, f32, "ABCD")).toThrow(/outside the float32 range/);
    expect(() => encodeRegisters(-3.5e38, f32, "ABCD")).toThrow(/outside the float32 range/);
    expect(() => encodeRegisters(1e-50, f32, "ABCD")).toThrow(/too small for float32/);
    expect(encodeRegisters(3.4028234663852886e38, f32, "ABCD")).toEqual([0x7f7f, 0xffff]);
    expect(encodeRegisters(-0, f32, "ABCD")).toEqual([0x8000, 0x0000]);
    for (const [v, t] of [
      [2 ** 63, "int64"],
      [-(2 ** 63) * 2, "int64"],
      [2 ** 64, "uint64"],
      [-1, "uint64"],
    ] as const)
      expect(() => encodeRegisters(v, { type: t }, "ABCD")).toThrow(`outside the ${t} range`);
    expect(() => encodeRegisters(2 ** 60, { type: "int64" }, "ABCD")).toThrow(/beyond ±2\^53/);
    expect(encodeRegisters(-(2 ** 53) + 1, { type: "int64" }, "ABCD")).toEqual([
      0xffe0, 0x0000, 0x0000, 0x0001,
    ]);
  });

  it("scales and unscales without binary-fraction noise", () => {
    expect(scaleValue(2301, 0.1, 0)).toBe(230.1);
    expect(scaleValue(-400, 0.1, 0)).toBe(-40);
    expect(unscale(23.7, 0.1, 0, "int16")).toBe(237);
    expect(unscale(20, 0.5, -10, "uint16")).toBe(60);
    expect(unscale(1.25, 0.5, 0, "float32")).toBe(2.5);
  });

  it("decodes the Eastron SDM630 worked answer frame (shared vector) to 230.0 V", () => {
    const md = readFileSync(
      new URL("../../drivers/modbus/testcases/eastron-sdm630.md", import.meta.url),
      "utf8",
    );
    const m = /a 230\.0 V answer is `([0-9A-F ]+)`/.exec(md);
    expect(m).not.toBeNull();
    const frame = Buffer.from(m![1]!.replace(/ /g, ""), "hex");
    expect(frame[1]).toBe(0x04);
    const regs = [frame.readUInt16BE(3), frame.readUInt16BE(5)];
    expect(decodeRegisters(regs, { type: "float32" }, "ABCD")).toBe(230);
  });
});

describe("modbus codec: float32 values as the shortest decimal that reads back the same", () => {
  it("shows 3.14159, not the float32's exact double", () => {
    expect(Math.fround(3.14159)).toBe(3.141590118408203);
    expect(decodeRegisters([0x4049, 0x0fd0], { type: "float32" }, "ABCD")).toBe(3.14159);
    expect(shortestFloat32(Math.fround(0.1))).toBe(0.1);
    expect(shortestFloat32(Math.fround(1 / 3))).toBe(0.33333334);
    expect(shortestFloat32(230.5)).toBe(230.5);
    expect(shortestFloat32(Math.fround(16777217))).toBe(16777216);
    expect(shortestFloat32(1.401298464324817e-45)).toBe(1e-45);
  });

  it("round-trips every shortest value to the same float32 (10,000 random patterns)", () => {
    const b = Buffer.alloc(4);
    for (let i = 0; i < 10_000; i++) {
      b.writeUInt32BE((Math.random() * 2 ** 32) >>> 0);
      const f = b.readFloatBE(0);
      if (!Number.isFinite(f)) continue;
      const s = shortestFloat32(f);
      expect(Math.fround(s)).toBe(f);
      expect(s.toExponential().replace(/^-|e.*$|\./g, "").length).toBeLessThanOrEqual(9);
    }
  });
});
