import { generateKeyPairSync, sign } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commandsConfigSchema } from "../../config/commands.js";
import { canonicalJson } from "../../config/canonical.js";
import { parsePublicKey } from "../../config/ed25519.js";
import { SignatureVerifier, signingInput } from "../../agent/commands/signing.js";
import { TempDb } from "./commands-helpers.js";

const hyper = generateKeyPairSync("ed25519");
const other = generateKeyPairSync("ed25519");
const pem = hyper.publicKey.export({ type: "spki", format: "pem" }).toString();
const rawB64 = (hyper.publicKey.export({ type: "spki", format: "der" }) as Buffer)
  .subarray(12)
  .toString("base64");

let tmp: TempDb;
let now = 1_760_000_000_000;
beforeEach(() => {
  tmp = new TempDb();
  now = 1_760_000_000_000;
});
afterEach(() => tmp.dispose());

function signed(
  body: Record<string, unknown>,
  key = hyper.privateKey,
  name = "write",
  gw = "gw-1",
  extra: Record<string, unknown> = {},
) {
  const req = {
    ...body,
    ts: now,
    nonce: `n-${Math.random().toString(36).slice(2)}-abcdefgh`,
    ...extra,
  };
  return { ...req, sig: sign(null, signingInput(gw, name, req), key).toString("base64") };
}

const verifier = (db = tmp.db) =>
  new SignatureVerifier({
    db,
    publicKey: parsePublicKey(pem),
    gatewayId: "gw-1",
    maxSkewMs: 300_000,
    now: () => now,
  });
const body = { id: "s1", device: "lamp-1", point: "dim", value: 40 };

describe("Ed25519 command signing", () => {
  it("accepts a valid signature", () => {
    expect(() => verifier().check("write", signed(body))).not.toThrow();
  });

  it("signs canonical JSON: key order does not matter", () => {
    const req = signed(body);
    const reordered = Object.fromEntries(Object.entries(req).reverse());
    expect(canonicalJson(reordered)).toBe(canonicalJson(req));
    expect(() => verifier().check("write", reordered)).not.toThrow();
  });

  it("refuses a signature by another key", () => {
    expect(() => verifier().check("write", signed(body, other.privateKey))).toThrow(
      /EE0507 bad signature/,
    );
  });

  it("refuses a tampered body, another command name or another gateway", () => {
    expect(() => verifier().check("write", { ...signed(body), value: 100 })).toThrow(
      /bad signature/,
    );
    expect(() => verifier().check("config/set", signed(body))).toThrow(/bad signature/);
    expect(() =>
      verifier().check("write", signed(body, hyper.privateKey, "write", "gw-2")),
    ).toThrow(/bad signature/);
  });

  it("refuses a stale or future timestamp", () => {
    const v = verifier();
    const old = signed(body);
    now += 301_000;
    expect(() => v.check("write", old)).toThrow(/EE0507 stale or future timestamp/);
    now -= 2 * 301_000;
    expect(() => v.check("write", old)).toThrow(/stale or future/);
  });

  it("refuses a replayed nonce, also after a restart", () => {
    const req = signed(body);
    verifier().check("write", req);
    expect(() => verifier().check("write", req)).toThrow(/EE0507 replayed nonce/);
    const db = tmp.reopen();
    expect(() => verifier(db).check("write", req)).toThrow(/replayed nonce/);
  });

  it("does not burn the nonce of an invalid signature", () => {
    const good = signed(body);
    expect(() =>
      verifier().check("write", { ...good, sig: signed(body, other.privateKey).sig }),
    ).toThrow(/bad signature/);
    expect(() => verifier().check("write", good)).not.toThrow();
  });

  it("refuses unsigned commands and malformed signing fields", () => {
    expect(() => verifier().check("write", body)).toThrow(/accepts only signed commands/);
    expect(() => verifier().check("write", { ...signed(body), nonce: "short" })).toThrow(/nonce/);
    expect(() => verifier().check("write", { ...signed(body), ts: "yesterday" })).toThrow(/ts:/);
    expect(() => verifier().check("write", { ...signed(body), sig: "AAAA" })).toThrow(
      /bad signature/,
    );
  });

  it("reads the key as PEM or base64 of the raw 32 bytes; refuses other keys in the config", () => {
    expect(parsePublicKey(rawB64).export({ format: "jwk" })).toEqual(
      hyper.publicKey.export({ format: "jwk" }),
    );
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    const r = commandsConfigSchema.safeParse({ signing: { public_key: rsa } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["signing", "public_key"]);
    expect(r.error?.issues[0]?.message).toMatch(/expected an Ed25519 key/);
    expect(commandsConfigSchema.safeParse({ signing: { public_key: "not a key!" } }).success).toBe(
      false,
    );
    const ok = commandsConfigSchema.parse({ signing: { public_key: rawB64 } });
    expect(ok.signing?.max_skew).toBe(300_000);
  });
});
