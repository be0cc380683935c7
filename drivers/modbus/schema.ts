/**
 * Config block of the Modbus driver. Addresses are 0-based register offsets (the number on the
 * wire), never the "4x0001"/"40001" reference numbers of some datasheets: see README.md.
 */
import { z } from "zod";
import { deviceBase, driverBase, duration, intRange, pointBase } from "../../config/common.js";

export const byteOrders = ["ABCD", "BADC", "CDAB", "DCBA"] as const;
export const byteOrder = z.enum(byteOrders, {
  error: "expected a byte/word order: ABCD (big-endian), DCBA (little-endian), BADC (byte-swapped), CDAB (word-swapped)",
});

export const tables = ["coil", "discrete_input", "holding", "input"] as const;
export const pointTypes = ["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string", "bit"] as const;

const address = z
  .number({ error: "expected integer 0..65535 (0-based register offset, not a 4x/40001 reference)" })
  .int({ error: "expected integer 0..65535 (0-based register offset, not a 4x/40001 reference)" })
  .min(0, { error: "expected integer 0..65535 (0-based register offset, not a 4x/40001 reference)" })
  .max(65535, { error: "expected integer 0..65535 (0-based register offset, not a 4x/40001 reference)" });

export const modbusPointSchema = z.strictObject({
  ...pointBase,
  table: z.enum(tables, { error: "expected table coil, discrete_input, holding or input" }),
  address,
  type: z.enum(pointTypes, { error: `expected type ${pointTypes.join(", ")}` }).default("uint16"),
  length: intRange(1, 123).optional().describe("Registers of a string point."),
  bit: intRange(0, 15).optional().describe("Bit number (0 = least significant) of a `bit` point."),
  order: byteOrder.optional().describe("Byte/word order; default: the device's."),
  scale: z.number().default(1).describe("value = raw × scale + offset."),
  offset: z.number().default(0),
  labels: z.record(z.string(), z.string()).optional().describe("Enum labels: raw value → text."),
});

const devicePoints = z.array(modbusPointSchema);

export const modbusDeviceSchema = z.strictObject({
  ...deviceBase,
  unit_id: intRange(0, 255).describe("Modbus unit (slave) id."),
  profile: z.string().optional().describe("Device profile (drivers/modbus/profiles/<name>.yaml) providing the point map."),
  poll_interval: duration.optional().describe("Default: the driver's poll_interval."),
  byte_order: byteOrder.optional().describe("Default order of multi-register values; default: the driver's."),
  max_gap: intRange(0, 124).optional().describe("Largest run of unmapped registers a coalesced read may span; 0 for devices that refuse reads across unmapped registers."),
  points: devicePoints.default([]),
});

const tcp = z.strictObject({
  type: z.literal("tcp"),
  host: z.string().min(1),
  port: intRange(1, 65535).default(502),
  concurrency: intRange(1, 16).default(1).describe("Transactions in flight per connection."),
});
const rtu = z.strictObject({
  type: z.literal("rtu"),
  path: z.string().min(1).describe("Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…"),
  baud: z.number().int().positive().default(9600),
  parity: z.enum(["none", "even", "odd"]).default("none"),
  data_bits: z.union([z.literal(7), z.literal(8)]).default(8),
  stop_bits: z.union([z.literal(1), z.literal(2)]).default(1),
  frame_delay_ms: z.number().min(0).optional().describe("Silent interval between frames; default 3.5 character times (1.75 ms above 19200 baud)."),
  turnaround_ms: z.number().min(0).default(100).describe("Delay after a broadcast before the next request."),
});
const rtuOverTcp = z.strictObject({
  type: z.literal("rtu_over_tcp"),
  host: z.string().min(1),
  port: intRange(1, 65535),
});

export const modbusDriverSchema = z.strictObject({
  ...driverBase,
  driver: z.literal("modbus"),
  transport: z.discriminatedUnion("type", [tcp, rtu, rtuOverTcp]),
  timeout_ms: intRange(10, 60_000).default(1000),
  retries: intRange(0, 10).default(1),
  poll_interval: duration.prefault("10s"),
  byte_order: byteOrder.default("ABCD"),
  max_gap: intRange(0, 124).default(16),
  max_registers: intRange(1, 125).default(125),
  max_bits: intRange(1, 2000).default(2000),
  devices: z.array(modbusDeviceSchema).default([]),
});

export type ModbusDriverConfig = z.infer<typeof modbusDriverSchema>;
export type ModbusDeviceConfig = z.infer<typeof modbusDeviceSchema>;
export type ModbusPointConfig = z.infer<typeof modbusPointSchema>;
