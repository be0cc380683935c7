/**
 * Config block of the wired M-Bus driver (EN 13757-2/-3): one serial line through a level
 * converter, with its meters addressed by primary address or by secondary address. See README.md.
 */
import { z } from "zod";
import { deviceBase, driverBase, duration, intRange, pointBase } from "../../config/common.js";

export const mbusFunctions = ["instantaneous", "maximum", "minimum", "error"] as const;

export const mbusPointSchema = z
  .strictObject({
    ...pointBase,
    record: intRange(0, 255)
      .optional()
      .describe("Index of the data record in the (multi-telegram) response."),
    quantity: z
      .string()
      .min(1)
      .optional()
      .describe('Quantity as decoded, e.g. "Energy", "Volume", "Flow temperature", "Power".'),
    storage: intRange(0, 2 ** 31 - 1)
      .default(0)
      .describe("Storage number (0 = current value, 1… = stored/historic values)."),
    tariff: intRange(0, 255).default(0).describe("Tariff number (0 = total)."),
    subunit: intRange(0, 255).default(0).describe("Device sub-unit."),
    function: z
      .enum(mbusFunctions, { error: `expected ${mbusFunctions.join(", ")}` })
      .default("instantaneous"),
  })
  .refine((p) => p.record !== undefined || p.quantity !== undefined, {
    error:
      "a point needs `record` (index in the response) or `quantity` (e.g. Energy) to find its value",
  });

const secondary = z.string().regex(/^[0-9Ff]{8}([0-9A-Fa-f]{8})?$/, {
  error:
    "expected a secondary address: 8-digit identification number (F = wildcard digit), optionally followed by manufacturer (4 hex), version (2 hex) and medium (2 hex)",
});

export const mbusDeviceSchema = z
  .strictObject({
    ...deviceBase,
    address: intRange(0, 250).optional().describe("Primary address 0..250."),
    secondary: secondary
      .optional()
      .describe(
        'Secondary address: identification number "12345678" (selected with SND_UD CI 52h, then read at address 253).',
      ),
    poll_interval: duration.optional().describe("Default: the driver's poll_interval."),
    max_telegrams: intRange(1, 32)
      .default(8)
      .describe("Most REQ_UD2 telegrams read in one poll when records say more follow (DIF 1Fh)."),
    points: z
      .array(mbusPointSchema)
      .default([])
      .describe("Points to publish. Empty: every record, with a generated point id (see README)."),
  })
  .refine((d) => (d.address === undefined) !== (d.secondary === undefined), {
    error: "set exactly one of `address` (primary 0..250) or `secondary` (identification number)",
  });

export const mbusDriverSchema = z.strictObject({
  ...driverBase,
  driver: z.literal("mbus"),
  path: z
    .string()
    .min(1, { error: "expected a serial device path such as /dev/ttyUSB0" })
    .describe("Serial device of the M-Bus level converter."),
  baud: z
    .literal([300, 600, 1200, 2400, 4800, 9600, 19200, 38400], {
      error: "expected an M-Bus baud rate: 300, 600, 1200, 2400, 4800, 9600, 19200 or 38400",
    })
    .default(2400)
    .describe("Line speed; frames are 8E1 (EN 13757-2)."),
  timeout_ms: intRange(50, 10_000)
    .default(1000)
    .describe("Answer timeout per request (EN 13757-2: 11 bit times + 50 ms minimum)."),
  retries: intRange(0, 5).default(2),
  poll_interval: duration.prefault("15m"),
  reconnect_min: duration.prefault("1s"),
  reconnect_max: duration.prefault("30s"),
  no_frame_timeout: duration
    .prefault("60s")
    .describe("Report the line as silent when no valid frame arrived for this long while polling."),
  devices: z.array(mbusDeviceSchema).default([]),
});

export type MbusDriverConfig = z.infer<typeof mbusDriverSchema>;
export type MbusDeviceConfig = z.infer<typeof mbusDeviceSchema>;
export type MbusPointConfig = z.infer<typeof mbusPointSchema>;
