/**
 * Builders for RSP_UD telegrams (EN 13757-3 variable data structure), used by the M-Bus meter
 * simulator and the tests. They share no code with the decoder in drivers/mbus/ (issue 19.8):
 * the decoder is checked against the libmbus corpus, these builders against that decoder.
 */
import { SIM_C, simLongFrame, simManufacturer } from "./wire.js";

export interface HeaderSpec {
  id: string; // 8 digits
  manufacturer: string; // 3 letters
  version: number;
  medium: number;
  accessNumber: number;
  status?: number;
}

export function header(h: HeaderSpec): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(h.id, "hex").reverse().copy(b, 0);
  b.writeUInt16LE(simManufacturer(h.manufacturer), 4);
  b[6] = h.version;
  b[7] = h.medium;
  b[8] = h.accessNumber & 0xff;
  b[9] = h.status ?? 0;
  return b;
}

/** DIB for storage/tariff/subunit: DIF with data code + DIFEs as needed. */
export function dib(
  dataCode: number,
  o: { storage?: number; tariff?: number; subunit?: number; fn?: number } = {},
): Buffer {
  const storage = o.storage ?? 0;
  const tariff = o.tariff ?? 0;
  const subunit = o.subunit ?? 0;
  let dif = dataCode | ((o.fn ?? 0) << 4) | ((storage & 1) << 6);
  const dife: number[] = [];
  let s = storage >> 1;
  let t = tariff;
  let u = subunit;
  while (s || t || u) {
    dife.push((s & 0x0f) | ((t & 0x03) << 4) | ((u & 1) << 6));
    s >>= 4;
    t >>= 2;
    u >>= 1;
  }
  if (dife.length) dif |= 0x80;
  for (let k = 0; k < dife.length - 1; k++) dife[k]! |= 0x80;
  return Buffer.from([dif, ...dife]);
}

export function int32Record(vif: number, value: number, o?: Parameters<typeof dib>[1]): Buffer {
  const d = Buffer.alloc(4);
  d.writeInt32LE(Math.round(value));
  return Buffer.concat([dib(0x04, o), Buffer.from([vif]), d]);
}

export function int16Record(vif: number, value: number, o?: Parameters<typeof dib>[1]): Buffer {
  const d = Buffer.alloc(2);
  d.writeInt16LE(Math.round(value));
  return Buffer.concat([dib(0x02, o), Buffer.from([vif]), d]);
}

/** 8-digit BCD record (DIF data code 0Ch). */
export function bcd8Record(vif: number, value: number, o?: Parameters<typeof dib>[1]): Buffer {
  const s = String(Math.round(value)).padStart(8, "0").slice(-8);
  return Buffer.concat([dib(0x0c, o), Buffer.from([vif]), Buffer.from(s, "hex").reverse()]);
}

/** Type F date/time (VIF 6Dh), meter local time. */
export function dateTimeRecord(d: Date, o?: Parameters<typeof dib>[1]): Buffer {
  const y = d.getFullYear() % 100;
  const b = Buffer.from([
    d.getMinutes() & 0x3f,
    d.getHours() & 0x1f,
    (d.getDate() & 0x1f) | ((y & 0x07) << 5),
    ((d.getMonth() + 1) & 0x0f) | ((y & 0x78) << 1),
  ]);
  return Buffer.concat([dib(0x04, o), Buffer.from([0x6d]), b]);
}

/** Manufacturer-specific tail: 0Fh (last telegram) or 1Fh (more records follow). */
export function tail(more: boolean, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([more ? 0x1f : 0x0f]), data]);
}

export function rspUd(address: number, payload: Buffer, acd = false): Buffer {
  return simLongFrame(SIM_C.RSP_UD | (acd ? 0x20 : 0), address, 0x72, payload);
}
