/**
 * Config of one Modbus point and of a profile file (a reusable point map). Apart from the
 * driver's schema so that profiles.ts, which validates profile files, and schema.ts, which
 * expands profiles into devices, do not import each other (issue 19 item 1: no import cycles).
 */
import { z } from "zod";
import { intRange, pointBase } from "../../config/common.js";

export const byteOrders = ["ABCD", "BADC", "CDAB", "DCBA"] as const;
export type ByteOrder = (typeof byteOrders)[number];
export const byteOrder = z.enum(byteOrders, {
  error:
    "expected a byte/word order: ABCD (big-endian), DCBA (little-endian), BADC (byte-swapped), CDAB (word-swapped)",
});

export const tables = ["coil", "discrete_input", "holding", "input"] as const;
export type Table = (typeof tables)[number];
export const pointTypes = [
  "bool",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "float32",
  "float64",
  "string",
  "bit",
] as const;
export type PointType = (typeof pointTypes)[number];

const ADDRESS_MSG = "expected integer 0..65535 (0-based register offset, not a 4x/40001 reference)";
const address = z
  .number({ error: ADDRESS_MSG })
  .int({ error: ADDRESS_MSG })
  .min(0, { error: ADDRESS_MSG })
  .max(65535, { error: ADDRESS_MSG });

export const isBitTable = (t: Table): boolean => t === "coil" || t === "discrete_input";

export const registerCount: Record<PointType, number> = {
  bool: 1,
  bit: 1,
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  int64: 4,
  uint64: 4,
  float64: 4,
  string: 1,
};

export const modbusPointSchema = z
  .strictObject({
    ...pointBase,
    table: z.enum(tables, { error: "expected table coil, discrete_input, holding or input" }),
    address,
    type: z
      .enum(pointTypes, { error: `expected type ${pointTypes.join(", ")}` })
      .optional()
      .describe("Value type; default bool for coil/discrete_input, uint16 for registers."),
    length: intRange(1, 123)
      .optional()
      .describe("Registers of a string point (2 characters each)."),
    bit: intRange(0, 15)
      .optional()
      .describe("Bit number (0 = least significant) of a `bit` point."),
    order: byteOrder.optional().describe("Byte/word order; default: the device's."),
    scale: z.number().default(1).describe("value = raw × scale + offset."),
    offset: z.number().default(0),
    labels: z.record(z.string(), z.string()).optional().describe("Enum labels: raw value → text."),
  })
  .superRefine((p, ctx) => {
    const bad = (path: string, message: string) =>
      ctx.addIssue({ code: "custom", path: [path], message });
    const bitTable = isBitTable(p.table);
    const type = p.type ?? (bitTable ? "bool" : "uint16");
    if (bitTable && type !== "bool")
      bad("type", `a ${p.table} holds one bit: use type bool (or leave type out), got ${type}`);
    if (!bitTable && type === "bool")
      bad(
        "type",
        `type bool is for coil/discrete_input; for one bit of a register use type bit with bit: N`,
      );
    if (type === "bit" && p.bit === undefined) bad("bit", "missing: a bit point needs bit: 0..15");
    if (type !== "bit" && p.bit !== undefined) bad("bit", "bit: is only for type bit");
    if (type === "string" && p.length === undefined)
      bad("length", "missing: a string point needs length: N registers");
    if (type !== "string" && p.length !== undefined)
      bad("length", "length: is only for type string");
    if (p.writable && (p.table === "input" || p.table === "discrete_input"))
      bad(
        "writable",
        `${p.table === "input" ? "an input register" : "a discrete input"} is read-only in Modbus; writable points live in holding or coil`,
      );
    const size = type === "string" ? (p.length ?? 1) : registerCount[type];
    if (p.address + size - 1 > 65535)
      bad(
        "address",
        `point spans ${size} registers from ${p.address}, past the last address 65535`,
      );
    if (p.scale === 0)
      bad("scale", "scale 0 would make every value equal to offset; use 1 for none");
    if (p.min !== undefined && p.max !== undefined && p.min > p.max)
      bad("min", `min ${p.min} is greater than max ${p.max}`);
  })
  .transform((p) => ({
    ...p,
    type: p.type ?? ((isBitTable(p.table) ? "bool" : "uint16") as PointType),
  }));

export type ModbusPointConfig = z.output<typeof modbusPointSchema>;

const profileArray = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/, { error: "expected a lower-case name like lamps" }),
  count: intRange(1, 1024).describe("Instances; `{n}` in ids/descriptions becomes 0..count-1."),
  stride: intRange(0, 4096).default(1).describe("Address step between instances."),
  points: z.array(z.looseObject({})).min(1),
});

/** A profile file: a reusable point map (see README, "Writing a profile"). */
export const profileFileSchema = z.strictObject({
  description: z.string().optional(),
  manufacturer: z.string().optional(),
  model: z.string().optional(),
  reference: z.string().optional().describe("Datasheet or register-map document the map follows."),
  byte_order: byteOrder.optional(),
  max_gap: intRange(0, 124).optional(),
  max_registers: intRange(1, 125)
    .optional()
    .describe("Most registers the device answers in one read (some meters refuse 125)."),
  points: z.array(modbusPointSchema).default([]),
  arrays: z.array(profileArray).default([]),
});
export type ProfileFile = z.output<typeof profileFileSchema>;
