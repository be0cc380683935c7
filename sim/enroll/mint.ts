/** Issue a token and write the matching provisioning bundle (what the platform gives installers). */
import { type BundleInput, validateBundle } from "../../agent/provision/bundle.js";
import type { TokenRegistry } from "./registry.js";

export interface MintOptions {
  gateway: string;
  commune: string;
  name?: string | undefined;
  url: string;
  enrolmentUrl?: string | undefined;
  prefix?: string | undefined;
  caPem: string;
  ttlMs: number;
  username?: string | undefined;
  password?: string | undefined;
}

export function mintBundle(registry: TokenRegistry, o: MintOptions): BundleInput {
  const expires = new Date(Date.now() + o.ttlMs);
  // Validate with a placeholder first: a bad gateway id or URL must not leave a live token behind.
  validateBundle(draft(o, "placeholder-token-0000", expires), "bundle options");
  return draft(o, registry.issue(o.gateway, expires), expires);
}

function draft(o: MintOptions, token: string, expires: Date): BundleInput {
  return {
    version: 1,
    gateway: { id: o.gateway, commune: o.commune, ...(o.name ? { name: o.name } : {}) },
    platform: {
      url: o.url,
      ...(o.enrolmentUrl ? { enrolment_url: o.enrolmentUrl } : {}),
      ...(o.prefix ? { prefix: o.prefix } : {}),
      ca: o.caPem,
    },
    enrolment: {
      token,
      expires: expires.toISOString(),
      ...(o.username ? { username: o.username } : {}),
      ...(o.password ? { password: o.password } : {}),
    },
  };
}
