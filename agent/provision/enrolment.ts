/** What an enrolled box has on disk, checked, as the TLS settings the uplink needs. */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { parseBundleText } from "./bundle.js";
import { readFileSync } from "node:fs";
import { type CertificateFacts, certificateFacts, publicKeyFingerprint } from "./crypto.js";
import { existsSync, moveFile, provisionPaths, readIfExists, removeFile } from "./files.js";

export interface EnrolledTls {
  gatewayId: string;
  /** The mTLS listener (bundle platform.url). */
  url: string;
  prefix: string;
  servername?: string | undefined;
  caPath: string;
  certPath: string;
  keyPath: string;
  /** The initial configuration received at enrolment, when there was one and it was valid. */
  configPath?: string | undefined;
  certificate: CertificateFacts;
}

/**
 * The current enrolment if key, certificate, CA and bundle copy are all there and consistent
 * (certificate chains to the CA and matches the key); `expired` when it is past notAfter.
 */
export function loadEnrolment(
  stateDir: string,
  now = new Date(),
): { tls: EnrolledTls; expired: boolean } | undefined {
  const p = provisionPaths(stateDir);
  repairPromotion(stateDir);
  const [certPem, keyPem, caPem, bundleText] = [p.cert, p.key, p.ca, p.bundle].map(readIfExists);
  if (!certPem || !keyPem || !caPem || !bundleText) return undefined;
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (
      !cert.checkIssued(ca) ||
      !cert.verify(ca.publicKey) ||
      !cert.checkPrivateKey(createPrivateKey(keyPem))
    )
      return undefined;
    const bundle = parseBundleText(bundleText, p.bundle);
    const facts = certificateFacts(certPem);
    return {
      expired: now > new Date(cert.validTo),
      tls: {
        gatewayId: bundle.gateway.id,
        url: bundle.platform.url,
        prefix: bundle.platform.prefix,
        servername: bundle.platform.servername,
        caPath: p.ca,
        certPath: p.cert,
        keyPath: p.key,
        configPath: readIfExists(p.config) !== undefined ? p.config : undefined,
        certificate: facts,
      },
    };
  } catch {
    return undefined;
  }
}

/** Finish a promotion cut between moving the key and moving the certificate (see renewOnce). */
export function repairPromotion(stateDir: string): void {
  const p = provisionPaths(stateDir);
  if (existsSync(p.renewKey) || !existsSync(p.renewCert) || !existsSync(p.key)) return;
  const key = readFileSync(p.key, "utf8");
  const cert = readFileSync(p.renewCert, "utf8");
  if (publicKeyFingerprint(key) === publicKeyFingerprint(cert)) {
    moveFile(p.renewCert, p.cert);
    removeFile(p.renewCsr);
    removeFile(p.renewRequest);
  }
}
