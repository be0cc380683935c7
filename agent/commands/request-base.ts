/** The fields every command request carries: its id, and the signing fields (signing.ts). */
import { z } from "zod";

const idError = "expected a command id: a string of 1-128 characters, unique per command";
export const commandId = z
  .string({ error: idError })
  .min(1, { error: idError })
  .max(128, { error: idError });

/** Fields of a signed request (see signing.ts); allowed on every command. */
export const signedFields = {
  ts: z.number().int().optional().describe("Signing time, ms since the epoch (signed commands)."),
  nonce: z
    .string()
    .optional()
    .describe("Single-use random string, 16-128 chars (signed commands)."),
  sig: z.string().optional().describe("Base64 Ed25519 signature (signed commands)."),
};

export const requestBase = { id: commandId, ...signedFields };
