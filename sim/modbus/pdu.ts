/**
 * The protocol half of the simulated Modbus server: register banks and the PDU handler for
 * function codes 1-6, 15 and 16 (Modbus Application Protocol V1.1b3 §6), with exception
 * responses (§7). Framing (MBAP for TCP, address + CRC for RTU) lives in server.ts.
 */

export type SimTable = "coil" | "discrete_input" | "holding" | "input";

/** Modbus CRC-16 (poly 0xA001 reflected, init 0xFFFF); sent low byte first. */
export function crc16(buf: Uint8Array, end = buf.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    crc ^= buf[i]!;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** One unit's data model. Tables are allocated on first use; `mapped` marks defined addresses. */
export class RegisterBank {
  // Allocated on first use: a bench runs a hundred units, most using one table.
  private readonly tables: Partial<Record<SimTable, Uint16Array | Uint8Array>> = {};
  private readonly masks: Partial<Record<SimTable, Uint8Array>> = {};

  private table<T extends Uint16Array | Uint8Array>(t: SimTable, make: () => T): T {
    return (this.tables[t] ??= make()) as T;
  }
  get holding(): Uint16Array {
    return this.table("holding", () => new Uint16Array(65536));
  }
  get input(): Uint16Array {
    return this.table("input", () => new Uint16Array(65536));
  }
  get coil(): Uint8Array {
    return this.table("coil", () => new Uint8Array(65536));
  }
  get discrete_input(): Uint8Array {
    return this.table("discrete_input", () => new Uint8Array(65536));
  }
  private mask(t: SimTable): Uint8Array {
    return (this.masks[t] ??= new Uint8Array(65536));
  }

  map(table: SimTable, address: number, count = 1): void {
    this.mask(table).fill(1, address, address + count);
  }

  isMapped(table: SimTable, address: number, count: number): boolean {
    const m = this.mask(table);
    for (let i = address; i < address + count; i++) if (!m[i]) return false;
    return true;
  }

  setFloat32(table: "holding" | "input", address: number, v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeFloatBE(v, 0);
    this[table][address] = b.readUInt16BE(0);
    this[table][address + 1] = b.readUInt16BE(2);
    this.map(table, address, 2);
  }

  getFloat32(table: "holding" | "input", address: number): number {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt16BE(this[table][address]!, 0);
    b.writeUInt16BE(this[table][address + 1]!, 2);
    return b.readFloatBE(0);
  }

  set(table: "holding" | "input", address: number, v: number): void {
    this[table][address] = v & 0xffff;
    this.map(table, address, 1);
  }
}

/** What a simulated device does beyond storing values. */
export interface UnitBehaviour {
  /** Called before a write lands; return an exception code to refuse it (e.g. 3 for a bad value). */
  beforeWrite?(table: "coil" | "holding", address: number, values: number[]): number | undefined;
  /** Called after a write landed. */
  afterWrite?(table: "coil" | "holding", address: number, values: number[]): void;
  /** Called about once a second with the elapsed time, to make values move. */
  tick?(dtMs: number): void;
}

export interface SimUnit {
  bank: RegisterBank;
  /** Answer "illegal data address" to reads touching unmapped addresses (like fussy devices). */
  strict: boolean;
  behaviour: UnitBehaviour;
  /** Requests served, for tests and the live view. */
  requests: number;
  /** Requests served per function code. */
  functions: Map<number, number>;
}

const exception = (fc: number, code: number): Buffer => Buffer.from([fc | 0x80, code]);

/** Handle one request PDU (function code + data) for a unit; returns the response PDU. */
export function handlePdu(unit: SimUnit, pdu: Buffer): Buffer {
  unit.requests++;
  const fc = pdu[0]!;
  unit.functions.set(fc, (unit.functions.get(fc) ?? 0) + 1);
  const { bank } = unit;
  if (pdu.length < 5 && fc >= 1 && fc <= 16) return exception(fc, 3);
  const address = pdu.length >= 3 ? pdu.readUInt16BE(1) : 0;
  switch (fc) {
    case 1:
    case 2: {
      const count = pdu.readUInt16BE(3);
      if (count < 1 || count > 2000) return exception(fc, 3);
      const table = fc === 1 ? "coil" : "discrete_input";
      if (address + count > 65536 || (unit.strict && !bank.isMapped(table, address, count)))
        return exception(fc, 2);
      const bytes = Math.ceil(count / 8);
      const out = Buffer.alloc(2 + bytes);
      out[0] = fc;
      out[1] = bytes;
      const src = bank[table];
      for (let i = 0; i < count; i++) if (src[address + i]) out[2 + (i >> 3)]! |= 1 << (i & 7);
      return out;
    }
    case 3:
    case 4: {
      const count = pdu.readUInt16BE(3);
      if (count < 1 || count > 125) return exception(fc, 3);
      const table = fc === 3 ? "holding" : "input";
      if (address + count > 65536 || (unit.strict && !bank.isMapped(table, address, count)))
        return exception(fc, 2);
      const out = Buffer.allocUnsafe(2 + count * 2);
      out[0] = fc;
      out[1] = count * 2;
      const src = bank[table];
      for (let i = 0; i < count; i++) out.writeUInt16BE(src[address + i]!, 2 + i * 2);
      return out;
    }
    case 5: {
      const v = pdu.readUInt16BE(3);
      if (v !== 0xff00 && v !== 0) return exception(fc, 3);
      return write(unit, fc, "coil", address, [v ? 1 : 0]) ?? Buffer.from(pdu.subarray(0, 5));
    }
    case 6:
      return (
        write(unit, fc, "holding", address, [pdu.readUInt16BE(3)]) ??
        Buffer.from(pdu.subarray(0, 5))
      );
    case 15:
    case 16: {
      const count = pdu.readUInt16BE(3);
      const bytes = pdu[5] ?? 0;
      const max = fc === 15 ? 1968 : 123;
      const need = fc === 15 ? Math.ceil(count / 8) : count * 2;
      if (count < 1 || count > max || bytes !== need || pdu.length < 6 + bytes)
        return exception(fc, 3);
      const values: number[] = [];
      for (let i = 0; i < count; i++)
        values.push(fc === 15 ? (pdu[6 + (i >> 3)]! >> (i & 7)) & 1 : pdu.readUInt16BE(6 + i * 2));
      return (
        write(unit, fc, fc === 15 ? "coil" : "holding", address, values) ??
        Buffer.from(pdu.subarray(0, 5))
      );
    }
    default:
      return exception(fc, 1);
  }
}

function write(
  unit: SimUnit,
  fc: number,
  table: "coil" | "holding",
  address: number,
  values: number[],
): Buffer | undefined {
  if (
    address + values.length > 65536 ||
    (unit.strict && !unit.bank.isMapped(table, address, values.length))
  )
    return exception(fc, 2);
  const refused = unit.behaviour.beforeWrite?.(table, address, values);
  if (refused) return exception(fc, refused);
  unit.bank[table].set(values, address);
  unit.bank.map(table, address, values.length);
  unit.behaviour.afterWrite?.(table, address, values);
  return undefined;
}
