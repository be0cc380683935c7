/**
 * The fixed data structure (CI 73h/77h, EN 1434-3 and EN 13757-3 annex): identification,
 * access number, status, medium/unit bytes and two 4-byte counters (BCD or binary).
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { toHex } from "./frame.js";
import type { MbusData, MbusHeader, MbusRecord } from "./data.js";
import { bcd, bcdString, lsbFirst } from "./fields.js";
import { mediumName, pow10 } from "./vif.js";

/** Fixed data structure, EN 1434-3 / EN 13757-3 annex: two counters with unit codes. */
const fixedUnits: { unit?: string; scale: number; label: string }[] = (() => {
  const t: { unit?: string; scale: number; label: string }[] = [];
  t[0x00] = { scale: 1, label: "h,m,s" };
  t[0x01] = { scale: 1, label: "D,M,Y" };
  const e = ["Wh", "10 Wh", "100 Wh", "kWh", "10 kWh", "100 kWh", "MWh", "10 MWh", "100 MWh"];
  e.forEach((label, k) => (t[0x02 + k] = { unit: "Wh", scale: pow10(k), label }));
  const j = ["kJ", "10 kJ", "100 kJ", "MJ", "10 MJ", "100 MJ", "GJ", "10 GJ", "100 GJ"];
  j.forEach((label, k) => (t[0x0b + k] = { unit: "J", scale: pow10(k + 3), label }));
  const w = ["W", "10 W", "100 W", "kW", "10 kW", "100 kW", "MW", "10 MW", "100 MW"];
  w.forEach((label, k) => (t[0x14 + k] = { unit: "W", scale: pow10(k), label }));
  const jh = [
    "kJ/h",
    "10 kJ/h",
    "100 kJ/h",
    "MJ/h",
    "10 MJ/h",
    "100 MJ/h",
    "GJ/h",
    "10 GJ/h",
    "100 GJ/h",
  ];
  jh.forEach((label, k) => (t[0x1d + k] = { unit: "W", scale: pow10(k + 3) / 3600, label }));
  const v = ["ml", "10 ml", "100 ml", "l", "10 l", "100 l", "m^3", "10 m^3", "100 m^3"];
  v.forEach((label, k) => (t[0x26 + k] = { unit: "m3", scale: pow10(k - 6), label }));
  const f = [
    "ml/h",
    "10 ml/h",
    "100 ml/h",
    "l/h",
    "10 l/h",
    "100 l/h",
    "m^3/h",
    "10 m^3/h",
    "100 m^3/h",
  ];
  f.forEach((label, k) => (t[0x2f + k] = { unit: "m3/h", scale: pow10(k - 6), label }));
  t[0x38] = { unit: "Cel", scale: 1e-3, label: "°C * 10^-3" };
  t[0x39] = { scale: 1, label: "units for HCA" };
  for (let k = 0x3a; k <= 0x3d; k++) t[k] = { scale: 1, label: "reserved" };
  t[0x3e] = { scale: 1, label: "reserved but historic" };
  t[0x3f] = { scale: 1, label: "without units" };
  return t;
})();

export function fixedUnit(code: number): { unit?: string; scale: number; label: string } {
  return fixedUnits[code & 0x3f]!;
}

/** `msbFirst`: CI 77h, identification and counters sent most significant byte first. */
export function parseFixed(d: Buffer, msbFirst = false): MbusData {
  if (d.length < 16)
    throw new EdgeError(
      ErrorCode.DeviceFrame,
      `invalid M-Bus data: fixed data structure needs 16 bytes, got ${d.length}`,
    );
  const status = d[5]!;
  const u0 = d[6]!;
  const u1 = d[7]!;
  const medium = ((u0 & 0xc0) >> 6) | ((u1 & 0xc0) >> 4);
  const header: MbusHeader = {
    id: bcdString(lsbFirst(d.subarray(0, 4), msbFirst)),
    manufacturer: "",
    version: 0,
    medium,
    mediumName: mediumName(medium),
    accessNumber: d[4]!,
    status,
  };
  // Status bit 7: counters in binary (1) or BCD (0); bit 6: historic (1) or actual (0) value.
  const binary = (status & 0x80) !== 0;
  const records = [0, 1].map((k): MbusRecord => {
    const bytes = lsbFirst(d.subarray(8 + 4 * k, 12 + 4 * k), msbFirst);
    const raw = binary ? bytes.readUInt32LE(0) : bcd(bytes);
    const u = fixedUnit(k === 0 ? u0 : u1);
    return {
      index: k,
      function: "instantaneous",
      storage: status & 0x40 ? 1 : 0,
      tariff: 0,
      subunit: 0,
      quantity: `Counter ${k + 1} (${u.label})`,
      ...(u.unit ? { unit: u.unit } : {}),
      value: raw * u.scale,
      dif: 0,
      dife: [],
      vife: [],
      raw: toHex(bytes),
    };
  });
  return { header, records, moreRecordsFollow: false, fixed: true };
}
