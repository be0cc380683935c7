/**
 * Enrolment tokens known to the reference service, in one JSON file written atomically.
 * Only SHA-256 hashes of tokens are stored (a leaked registry opens nothing). A token is
 * single-use: once a certificate is issued, the token is bound to that public key, and the same
 * (token, key) pair gets the same certificate again — so a gateway that lost power between
 * sending its request and storing the answer can recover, while anyone else is refused.
 */
import { createHash, randomBytes } from "node:crypto";
import { readIfExists, writeFileAtomic } from "../../agent/provision/files.js";

export interface TokenEntry {
  gateway: string;
  expires: string;
  issued_at: string;
  used?: { at: string; public_key_sha256: string; certificate: string };
}

export interface RegistryData {
  tokens: Record<string, TokenEntry>;
}

export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export class TokenRegistry {
  constructor(readonly path: string) {}

  read(): RegistryData {
    const text = readIfExists(this.path);
    if (text === undefined) return { tokens: {} };
    return JSON.parse(text) as RegistryData;
  }

  private write(data: RegistryData): void {
    writeFileAtomic(this.path, `${JSON.stringify(data, null, 2)}\n`, 0o600);
  }

  /** Create a token for `gateway`, valid until `expires`; returns the token (shown once). */
  issue(gateway: string, expires: Date): string {
    const token = randomBytes(24).toString("base64url");
    const data = this.read();
    data.tokens[hashToken(token)] = {
      gateway,
      expires: expires.toISOString(),
      issued_at: new Date().toISOString(),
    };
    this.write(data);
    return token;
  }

  lookup(token: string): TokenEntry | undefined {
    return this.read().tokens[hashToken(token)];
  }

  markUsed(token: string, publicKeySha256: string, certificate: string): void {
    const data = this.read();
    const e = data.tokens[hashToken(token)];
    if (!e) throw new Error("token vanished from the registry");
    e.used = { at: new Date().toISOString(), public_key_sha256: publicKeySha256, certificate };
    this.write(data);
  }
}
