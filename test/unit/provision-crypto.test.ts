/** Keys, CSRs, issued-certificate checks and the renewal schedule, without a broker. */
import { X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildCsrPem,
  generatePrivateKeyPem,
  inspectCsr,
  proofPayload,
  publicKeyFingerprint,
  signProof,
  verifyIssuedCertificate,
  verifyProof,
} from "../../agent/provision/crypto.js";
import { renewalDueAt } from "../../agent/provision/renew.js";
import { loadSigningCa, signCsr } from "../../sim/enroll/ca.js";

let dir: string;
let ca: ReturnType<typeof loadSigningCa>;
let caPem: string;
let key: string;
let csr: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "eclor-crypto-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "1",
      "-subj",
      "/CN=unit-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
    ],
    { cwd: dir, stdio: "ignore" },
  );
  caPem = readFileSync(join(dir, "ca.pem"), "utf8");
  ca = loadSigningCa(caPem, readFileSync(join(dir, "ca.key"), "utf8"));
  key = generatePrivateKeyPem();
  csr = buildCsrPem(key, "gw-unit-1");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("provisioning crypto", () => {
  it("builds a CSR that openssl accepts, with CN = gateway id and our public key", () => {
    expect(inspectCsr(csr)).toEqual({ cn: "gw-unit-1", signatureOk: true });
    // Independent check: openssl verifies the CSR's self-signature and reads the subject.
    const out = execFileSync("openssl", ["req", "-noout", "-verify", "-subject"], {
      input: csr,
      stdio: ["pipe", "pipe", "pipe"],
    }).toString();
    expect(out).toMatch(/subject=CN ?= ?gw-unit-1/);
    expect(publicKeyFingerprint(csr)).toBe(publicKeyFingerprint(key));
  });

  it("accepts a certificate the CA issued for our key and id; openssl agrees it chains", () => {
    const cert = signCsr(ca, csr, 3_600_000);
    const facts = verifyIssuedCertificate(cert, caPem, key, "gw-unit-1");
    expect(facts.subjectCn).toBe("gw-unit-1");
    const v = execFileSync(
      "openssl",
      ["verify", "-CAfile", join(dir, "ca.pem"), "-purpose", "sslclient"],
      { input: cert },
    ).toString();
    expect(v).toMatch(/OK/);
    expect(new X509Certificate(cert).keyUsage).toContain("1.3.6.1.5.5.7.3.2"); // clientAuth
  });

  it("refuses a certificate for another key, another CN, or outside its validity", () => {
    const otherKey = generatePrivateKeyPem();
    const forOther = signCsr(ca, buildCsrPem(otherKey, "gw-unit-1"), 3_600_000);
    expect(() => verifyIssuedCertificate(forOther, caPem, key, "gw-unit-1")).toThrow(
      /does not match this gateway's private key/,
    );
    const otherCn = signCsr(ca, buildCsrPem(key, "gw-unit-2"), 3_600_000);
    expect(() => verifyIssuedCertificate(otherCn, caPem, key, "gw-unit-1")).toThrow(
      /is for CN "gw-unit-2"/,
    );
    const cert = signCsr(ca, csr, 3_600_000);
    expect(() =>
      verifyIssuedCertificate(cert, caPem, key, "gw-unit-1", new Date(Date.now() + 2 * 3_600_000)),
    ).toThrow(/not now.*clock/);
    expect(() => verifyIssuedCertificate("garbage", caPem, key, "gw-unit-1")).toThrow(
      /not a readable X\.509 PEM/,
    );
  });

  it("proof of possession binds gateway, request id and CSR", () => {
    const cert = signCsr(ca, csr, 3_600_000);
    const payload = proofPayload("gw-unit-1", "req-1", csr);
    const sig = signProof(key, payload);
    expect(verifyProof(cert, payload, sig)).toBe(true);
    expect(verifyProof(cert, proofPayload("gw-unit-1", "req-2", csr), sig)).toBe(false);
    expect(verifyProof(cert, payload, signProof(generatePrivateKeyPem(), payload))).toBe(false);
  });

  it("schedules renewal at notAfter − margin, never before half the lifetime", () => {
    const nb = "2026-01-01T00:00:00.000Z";
    const na = "2027-01-01T00:00:00.000Z";
    expect(new Date(renewalDueAt(nb, na, 30 * 86_400_000)).toISOString()).toBe(
      "2026-12-02T00:00:00.000Z",
    );
    // A margin longer than the lifetime would renew in a loop: half-life instead.
    expect(new Date(renewalDueAt(nb, na, 400 * 86_400_000)).toISOString()).toBe(
      "2026-07-02T12:00:00.000Z",
    );
  });
});
