/**
 * M-Bus application layer (EN 13757-3): the RSP_UD payload. Variable data structure (CI 72h/76h:
 * 12-byte fixed header then DIF/DIFE/VIF/VIFE data records) and the fixed data structure (CI 73h,
 * EN 1434-3). Decoding is pure: a record that cannot be decoded carries `error`; a structure
 * that cannot be walked (truncated record, too many extensions) throws EdgeError DeviceFrame.
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type { MbusFrame } from "./frame.js";
import { toHex } from "./frame.js";
import { parseFixed } from "./fixed.js";
import { bcd, bcdString, dateG, dateTime, lsbFirst, manufacturerCode } from "./fields.js";
import { type VifInfo, fbVif, fdVif, mediumName, pow10, primaryVif } from "./vif.js";

export interface MbusHeader {
  /** Identification number, 8 BCD digits. */
  id: string;
  /** Three-letter FLAG manufacturer code. */
  manufacturer: string;
  version: number;
  medium: number;
  mediumName: string;
  accessNumber: number;
  status: number;
  signature?: number;
}

export type MbusFunction =
  "instantaneous" | "maximum" | "minimum" | "error" | "manufacturer" | "more_records";

export interface MbusRecord {
  index: number;
  function: MbusFunction;
  storage: number;
  tariff: number;
  subunit: number;
  quantity: string;
  unit?: string;
  /** Number, date/time string (ISO 8601, meter local time, no zone), text, or hex for manufacturer data. */
  value: number | string | null;
  /** Record could not be decoded (unknown data field, bad date…): value is null. */
  error?: string;
  dif: number;
  dife: number[];
  vif?: number;
  vife: number[];
  /** Data bytes as hex in the order they were sent, for diagnostics. */
  raw: string;
}

export interface MbusData {
  header: MbusHeader;
  records: MbusRecord[];
  /** A DIF 1Fh record asked the master to send another REQ_UD2 (multi-telegram). */
  moreRecordsFollow: boolean;
  /** Fixed data structure (CI 73h) rather than variable. */
  fixed: boolean;
}

const functions: MbusFunction[] = ["instantaneous", "maximum", "minimum", "error"];
/** Data length by DIF data-field code (EN 13757-3 table 4); 0x0D is variable (LVAR). */
const dataLength = [0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, 8];
const MAX_EXT = 10; // DIFE/VIFE chain limit (EN 13757-3 §6.3.3/§6.4.5)

function frameError(msg: string): EdgeError {
  return new EdgeError(ErrorCode.DeviceFrame, `invalid M-Bus data: ${msg}`);
}

function int(b: Uint8Array): number {
  if (b.length === 0) return 0;
  if (b.length <= 6) return Buffer.from(b).readIntLE(0, b.length);
  return Number(Buffer.from(b).readBigInt64LE(0));
}

function parseHeader(d: Buffer, ci: number): MbusHeader {
  if (d.length < 12) throw frameError(`fixed header needs 12 bytes, got ${d.length}`);
  const idBytes = ci === 0x76 ? Buffer.from(d.subarray(0, 4)).reverse() : d.subarray(0, 4);
  const man = ci === 0x76 ? d.readUInt16BE(4) : d.readUInt16LE(4);
  return {
    id: bcdString(idBytes),
    manufacturer: manufacturerCode(man),
    version: d[6]!,
    medium: d[7]!,
    mediumName: mediumName(d[7]!),
    accessNumber: d[8]!,
    status: d[9]!,
    signature: ci === 0x76 ? d.readUInt16BE(10) : d.readUInt16LE(10),
  };
}

/** Parse the payload of a long RSP_UD frame. */
export function parseUserData(frame: MbusFrame): MbusData {
  if (frame.kind !== "long")
    throw frameError(
      `expected a long RSP_UD frame, got ${frame.kind === "ack" ? "an ACK (E5)" : "a short frame"}`,
    );
  if ((frame.control & 0x4f) !== 0x08)
    throw frameError(`control field 0x${frame.control.toString(16)} is not RSP_UD (08h)`);
  if (frame.ci === 0x72 || frame.ci === 0x76 || frame.ci === 0x78)
    return parseVariable(frame.data, frame.ci);
  if (frame.ci === 0x73 || frame.ci === 0x77) return parseFixed(frame.data, frame.ci === 0x77);
  if (frame.ci === 0x70) throw applicationError(frame.data);
  throw frameError(
    `CI field 0x${frame.ci.toString(16)} is not a supported response (72h, 76h, 78h variable; 73h, 77h fixed; 70h application error)`,
  );
}

/** Application error codes of a CI 70h telegram (EN 13757-3:2018 table 26, libmbus's wording). */
const appErrors = [
  "unspecified error",
  "unimplemented CI-field",
  "buffer too long, truncated",
  "too many records",
  "premature end of record",
  "more than 10 DIFEs",
  "more than 10 VIFEs",
  "reserved",
  "application busy",
  "too many readouts",
];

/**
 * CI 70h: the meter answers with an application error instead of data (an empty telegram is an
 * unspecified error). It is the meter speaking, not a broken frame: DeviceException, so the
 * readings get quality `exception` with the meter's reason.
 */
function applicationError(d: Buffer): EdgeError {
  const code = d.length > 0 ? d[0]! : 0;
  const name = appErrors[code] ?? "reserved";
  return new EdgeError(
    ErrorCode.DeviceException,
    `the meter reports an application error: ${name} (CI 70h, code ${code})`,
  );
}

/** CI 78h: variable data with no header (EN 13757-3:2018 §7.2): the telegram carries no id. */
const noHeader: MbusHeader = {
  id: "",
  manufacturer: "",
  version: 0,
  medium: 0x0f,
  mediumName: "Unknown (CI 78h, no header)",
  accessNumber: 0,
  status: 0,
};

function parseVariable(d: Buffer, ci: number): MbusData {
  const header = ci === 0x78 ? { ...noHeader } : parseHeader(d, ci);
  const records: MbusRecord[] = [];
  let moreRecordsFollow = false;
  let i = ci === 0x78 ? 0 : 12;
  while (i < d.length) {
    const start = i;
    const dif = d[i++]!;
    if (dif === 0x2f) continue; // idle filler (EN 13757-3 §6.3.2)
    if ((dif & 0xef) === 0x0f) {
      // 0Fh / 1Fh: manufacturer-specific data to the end of the telegram; 1Fh: more records follow.
      if (dif === 0x1f) moreRecordsFollow = true;
      const data = d.subarray(i);
      records.push({
        index: records.length,
        function: dif === 0x1f ? "more_records" : "manufacturer",
        storage: 0,
        tariff: 0,
        subunit: 0,
        quantity: "Manufacturer specific data",
        value: toHex(data),
        dif,
        dife: [],
        vife: [],
        raw: toHex(data),
      });
      break;
    }
    const dife: number[] = [];
    let ext = dif & 0x80;
    while (ext) {
      if (i >= d.length)
        throw frameError(
          `record ${records.length} at byte ${start}: telegram ends inside the DIF extensions`,
        );
      if (dife.length >= MAX_EXT)
        throw frameError(`record ${records.length} at byte ${start}: more than ${MAX_EXT} DIFE`);
      const e = d[i++]!;
      dife.push(e);
      ext = e & 0x80;
    }
    if (i >= d.length)
      throw frameError(`record ${records.length} at byte ${start}: telegram ends before the VIF`);
    const vif = d[i++]!;
    let plain: string | undefined;
    if ((vif & 0x7f) === 0x7c) {
      // Plain-text unit: length byte then ASCII, last character first (EN 13757-3 §6.4.3).
      // It follows the VIF directly, as libmbus and the meters of its corpus encode it.
      if (i >= d.length)
        throw frameError(`record ${records.length}: telegram ends inside a plain-text VIF`);
      const n = d[i++]!;
      if (i + n > d.length)
        throw frameError(
          `record ${records.length}: plain-text VIF of ${n} bytes runs past the telegram end`,
        );
      plain = Buffer.from(d.subarray(i, i + n))
        .reverse()
        .toString("latin1");
      i += n;
    }
    const vife: number[] = [];
    ext = vif & 0x80;
    while (ext) {
      if (i >= d.length)
        throw frameError(
          `record ${records.length} at byte ${start}: telegram ends inside the VIF extensions`,
        );
      if (vife.length >= MAX_EXT)
        throw frameError(`record ${records.length} at byte ${start}: more than ${MAX_EXT} VIFE`);
      const e = d[i++]!;
      vife.push(e);
      ext = e & 0x80;
    }
    let len = dataLength[dif & 0x0f]!;
    let lvar: number | undefined;
    if (len < 0) {
      if (i >= d.length)
        throw frameError(`record ${records.length}: telegram ends before the LVAR byte`);
      lvar = d[i++]!;
      if (lvar <= 0xbf) len = lvar;
      else if (lvar <= 0xdf) len = (lvar & 0x0f) * 2;
      else if (lvar <= 0xef) len = lvar - 0xe0;
      else if (lvar <= 0xfa)
        len = (lvar - 0xec) * 4; // F0h–FAh: binary of 4×(LVAR−ECh) bytes
      else throw frameError(`record ${records.length}: reserved LVAR 0x${lvar.toString(16)}`);
    }
    if (i + len > d.length)
      throw frameError(
        `record ${records.length} at byte ${start}: ${len} data bytes announced, only ${d.length - i} left (premature end of telegram)`,
      );
    // Manufacturer-specific data (data field Fh) is opaque: kept in the order it was sent.
    const data =
      (dif & 0x0f) === 0x0f
        ? d.subarray(i, i + len)
        : lsbFirst(d.subarray(i, i + len), ci === 0x76);
    i += len;
    records.push(
      decodeRecord(records.length, dif, dife, vif, vife, plain, data, lvar, d.subarray(i - len, i)),
    );
  }
  return { header, records, moreRecordsFollow, fixed: false };
}

function storageOf(dif: number, dife: number[]): number {
  let s = (dif >> 6) & 1;
  dife.forEach((e, k) => (s += (e & 0x0f) * 2 ** (1 + 4 * k)));
  return s;
}
function tariffOf(dife: number[]): number {
  let t = 0;
  dife.forEach((e, k) => (t += ((e >> 4) & 0x03) * 2 ** (2 * k)));
  return t;
}
function subunitOf(dife: number[]): number {
  let u = 0;
  dife.forEach((e, k) => (u += ((e >> 6) & 1) * 2 ** k));
  return u;
}

function vifInfo(vif: number, vife: number[]): { info: VifInfo; modifiers: number[] } {
  if (vif === 0xfd || vif === 0xfb) {
    if (vife.length === 0)
      return {
        info: { quantity: "Missing VIF extension", scale: 1, kind: "number", special: "reserved" },
        modifiers: [],
      };
    const code = vife[0]! & 0x7f;
    return { info: vif === 0xfd ? fdVif(code) : fbVif(code), modifiers: vife.slice(1) };
  }
  return { info: primaryVif(vif & 0x7f), modifiers: vife };
}

function decodeRecord(
  index: number,
  dif: number,
  dife: number[],
  vif: number,
  vife: number[],
  plain: string | undefined,
  data: Buffer,
  lvar: number | undefined,
  /** The data bytes in the order they were sent (CI 76h: most significant first). */
  sent: Buffer,
): MbusRecord {
  const { info, modifiers } = vifInfo(vif, vife);
  const base = {
    index,
    function: functions[(dif >> 4) & 0x03]!,
    storage: storageOf(dif, dife),
    tariff: tariffOf(dife),
    subunit: subunitOf(dife),
    quantity: plain ?? info.quantity,
    dif,
    dife,
    vif,
    vife,
    raw: toHex(sent),
  };
  const unit = plain === undefined ? info.unit : undefined;
  const withUnit = unit ? { unit } : {};
  const df = dif & 0x0f;
  try {
    let raw: number | string;
    switch (df) {
      case 0x00:
        return { ...base, ...withUnit, value: "" };
      case 0x08:
        return { ...base, value: null, error: "selection for readout (no data)" };
      case 0x0f:
        return { ...base, value: toHex(data) };
      case 0x05:
        raw = data.readFloatLE(0);
        break;
      case 0x0d:
        if (lvar !== undefined && lvar <= 0xbf)
          return { ...base, ...withUnit, value: Buffer.from(data).reverse().toString("latin1") };
        if (lvar !== undefined && lvar >= 0xc0 && lvar <= 0xdf)
          raw = (lvar >= 0xd0 ? -1 : 1) * bcd(data);
        else if (lvar !== undefined && lvar >= 0xe0 && lvar <= 0xef && data.length <= 6)
          raw = int(data);
        // Longer binary numbers exceed a double's precision: kept as hex, most significant byte first.
        else return { ...base, value: toHex(Buffer.from(data).reverse()) };
        break;
      default:
        if (df >= 0x09) {
          raw = bcd(data);
        } else if (
          (info.kind === "date" && data.length === 2) ||
          (info.kind === "datetime" && (data.length === 4 || data.length === 6))
        ) {
          return { ...base, value: data.length === 2 ? dateG(data) : dateTime(data) };
        } else raw = int(data);
    }
    let value = info.special === "plaintext" || plain !== undefined ? raw : raw * info.scale;
    // Combinable VIFE (EN 13757-3 table 15): correction factors. Applied as libmbus does.
    for (const m of modifiers.slice(0, 1)) {
      const c = m & 0x7f;
      if (c >= 0x70 && c <= 0x77) value *= pow10((c & 0x07) - 6);
      else if (c >= 0x78 && c <= 0x7b) value += pow10((c & 0x03) - 3);
      else if (c === 0x7d) value *= 1000;
    }
    return { ...base, ...withUnit, value };
  } catch (e) {
    return {
      ...base,
      value: null,
      error: `cannot decode data ${toHex(data)}: ${(e as Error).message}`,
    };
  }
}
