/**
 * The platform's signing side: turns a gateway CSR into a client certificate signed by the
 * platform CA. node-forge does the X.509 work (Node's crypto cannot issue certificates); it only
 * supports RSA, so the CA key must be RSA (e.g. `openssl req -x509 -newkey rsa:2048 …`).
 */
import { createPrivateKey, randomBytes } from "node:crypto";
import forge from "node-forge";
import { EdgeError, ErrorCode } from "../../core/errors.js";

export interface SigningCa {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  certPem: string;
}

export function loadSigningCa(certPem: string, keyPem: string): SigningCa {
  let key: forge.pki.rsa.PrivateKey;
  let cert: forge.pki.Certificate;
  try {
    // Normalise any PEM flavour (PKCS#8, PKCS#1) to PKCS#1, which forge reads reliably.
    const k = createPrivateKey(keyPem);
    if (k.asymmetricKeyType !== "rsa") {
      throw new Error(
        `the CA key is ${k.asymmetricKeyType ?? "unknown"}, the reference service signs with RSA keys only`,
      );
    }
    key = forge.pki.privateKeyFromPem(k.export({ type: "pkcs1", format: "pem" }).toString());
    cert = forge.pki.certificateFromPem(certPem);
  } catch (e) {
    throw new EdgeError(ErrorCode.SimulatorConfig, `cannot load the CA: ${(e as Error).message}`);
  }
  const pub = cert.publicKey as forge.pki.rsa.PublicKey;
  if (pub.n.compareTo(key.n) !== 0) {
    throw new EdgeError(
      ErrorCode.SimulatorConfig,
      "the CA key does not belong to the CA certificate (--ca-key and --ca-cert differ)",
    );
  }
  return { cert, key, certPem };
}

/** Sign `csrPem` for `validityMs`; the subject is copied from the CSR (already checked by the caller). */
export function signCsr(
  ca: SigningCa,
  csrPem: string,
  validityMs: number,
  now = new Date(),
): string {
  const csr = forge.pki.certificationRequestFromPem(csrPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = csr.publicKey!;
  // 16 random bytes, top bit cleared: a positive serial (RFC 5280 §4.1.2.2).
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  cert.serialNumber = serial.toString("hex");
  // A minute of slack for gateways whose clock runs a little behind.
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + validityMs);
  cert.setSubject(csr.subject.attributes);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", clientAuth: true },
    { name: "subjectKeyIdentifier" },
    {
      name: "authorityKeyIdentifier",
      keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes(),
    },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}
