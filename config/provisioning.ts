/**
 * The `provisioning:` block of the main config (registered in config/schema.ts). Present = this
 * box enrols itself with a bundle on first start and renews its certificate before expiry; the
 * uplink then uses <state_dir>/provision/{ca,cert,key}.pem instead of uplink.tls.ca/cert/key.
 */
import { z } from "zod";
import { duration } from "./common.js";

export const provisioningConfigSchema = z.strictObject({
  bundle: z
    .string()
    .optional()
    .describe(
      "Provisioning bundle file (e.g. /boot/firmware/eclor-edge/bundle.yaml). Read at every enrolment attempt; once enrolled the agent runs from <state_dir>/provision/ and the bundle may go.",
    ),
  timeout: duration
    .default(60_000)
    .describe('How long to wait for the enrolment service to answer one request (default "60s").'),
  retry_max: duration
    .default(300_000)
    .describe('Cap of the retry delay after a failed enrolment or renewal (default "5m").'),
  renew_before: duration
    .default(30 * 86_400_000)
    .describe(
      'Renew the certificate this long before it expires (default "30d"). The old certificate stays in use until the new one has been verified and accepted by the broker.',
    ),
});

export type ProvisioningConfig = z.infer<typeof provisioningConfigSchema>;
