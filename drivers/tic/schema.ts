/**
 * Config block of the TIC driver: one serial line carries one meter (Linky or CBE). See README.md.
 */
import { z } from "zod";
import { deviceBase, driverBase, duration, pointBase } from "../../config/common.js";
import { knownLabels } from "./labels.js";

export const ticModes = ["auto", "historic", "standard"] as const;

export const ticPointSchema = z.strictObject({
  ...pointBase,
  label: z
    .string({ error: 'expected a TIC label such as "PAPP", "HCHC", "EAST", "SINSTS"' })
    .regex(/^[A-Z0-9][A-Z0-9+-]{0,15}$/, {
      error: 'expected a TIC label in upper case, such as "PAPP", "HCHC", "EAST", "SMAXSN-1"',
    })
    // The label sets are closed (Enedis-NOI-CPT_02E §6.2.2, -54E §6.2.3): any other label would
    // never carry a value.
    .refine((l) => l in knownLabels("historic") || l in knownLabels("standard"), {
      error: (i) =>
        `"${String(i.input)}" is not a TIC label of historic or standard mode (e.g. PAPP, HCHC, PTEC; EAST, SINSTS, SMAXSN-1)`,
    })
    .describe("TIC label of the group (historic or standard mode)."),
});

export const ticDeviceSchema = z.strictObject({
  ...deviceBase,
  meter_id: z
    .string()
    .regex(/^\d{12}$/, {
      error: "expected the 12-digit meter address (ADCO in historic mode, ADSC in standard mode)",
    })
    .optional()
    .describe(
      "Meter address (ADCO/ADSC). When set, frames from another meter are refused with an event.",
    ),
  points: z
    .array(ticPointSchema)
    .default([])
    .describe(
      "Labels to publish, with their deadband/max_interval. Empty: every label the meter sends, with its default point id (lower-case label, '+' → 'p').",
    ),
});

export const ticDriverSchema = z.strictObject({
  ...driverBase,
  driver: z.literal("tic"),
  path: z
    .string()
    .min(1, { error: "expected a serial device path such as /dev/ttyUSB0 or /dev/serial/by-id/…" })
    .describe("Serial device of the TIC interface."),
  mode: z
    .enum(ticModes, { error: "expected auto, historic (1200 baud) or standard (9600 baud)" })
    .default("auto")
    .describe(
      "historic: 1200 baud 7E1; standard: 9600 baud 7E1; auto: start at 1200 and switch speed when no valid frame arrives.",
    ),
  no_frame_timeout: duration
    .prefault("10s")
    .describe(
      "Diagnose the line (event, status) when no valid frame arrived for this long; auto mode then tries the other speed.",
    ),
  no_frame_repeat: duration
    .prefault("6h")
    .describe(
      "While the line stays bad, repeat the tic_no_valid_frame event at most this often (one event per cause: silence or garbage).",
    ),
  reconnect_min: duration
    .prefault("1s")
    .describe("First delay before reopening a missing port; doubles each attempt."),
  reconnect_max: duration
    .prefault("30s")
    .describe("Longest delay between attempts to reopen the port."),
  devices: z
    .array(ticDeviceSchema)
    .min(1, { error: "a TIC driver needs its meter: add one device" })
    .max(1, { error: "a TIC line carries exactly one meter: use one driver per serial port" }),
});

export type TicDriverConfig = z.infer<typeof ticDriverSchema>;
export type TicDeviceConfig = z.infer<typeof ticDeviceSchema>;
