/** Ed25519 public keys as the config writes them (used by the config schema and the signing check). */
import { type KeyObject, createPublicKey } from "node:crypto";

// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4): SEQUENCE { AlgorithmIdentifier
// { 1.3.101.112 }, BIT STRING (32 bytes) }.
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** Parse the configured key: PEM, base64 DER SPKI, or base64 of the 32 raw bytes. Throws plain Error. */
export function parsePublicKey(text: string): KeyObject {
  const t = text.trim();
  let key: KeyObject;
  if (t.startsWith("-----BEGIN")) key = createPublicKey(t);
  else {
    if (!/^[A-Za-z0-9+/=\s]+$/.test(t)) throw new Error("not PEM and not base64");
    const raw = Buffer.from(t, "base64");
    const der = raw.length === 32 ? Buffer.concat([ED25519_SPKI_PREFIX, raw]) : raw;
    key = createPublicKey({ key: der, format: "der", type: "spki" });
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw new Error(
      `expected an Ed25519 key, got ${key.asymmetricKeyType ?? "an unknown key type"}`,
    );
  }
  return key;
}
