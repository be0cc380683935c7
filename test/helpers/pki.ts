/**
 * Test certificates made with the openssl CLI (an independent implementation, not our code):
 * a CA and leaves signed by it. RSA by default because node-forge (the agent's CSR code) reads
 * only RSA keys; `ec` for tests that do not go through node-forge (faster to generate).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type KeyKind = "rsa" | "ec";

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function newKey(kind: KeyKind): string[] {
  return kind === "rsa"
    ? ["-newkey", "rsa:2048"]
    : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
}

export interface Pem {
  cert: string;
  key: string;
}

/** A self-signed CA valid 2 days: files `<name>.pem` / `<name>.key` in `dir`, and their text. */
export function makeCa(
  dir: string,
  name: string,
  kind: KeyKind = "rsa",
): Pem & { certPem: string; keyPem: string } {
  openssl(
    [
      "req",
      "-x509",
      ...newKey(kind),
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  return {
    cert: join(dir, `${name}.pem`),
    key: join(dir, `${name}.key`),
    certPem: readFileSync(join(dir, `${name}.pem`), "utf8"),
    keyPem: readFileSync(join(dir, `${name}.key`), "utf8"),
  };
}

/** A leaf `<name>.pem` / `<name>.key` with subject CN `cn`, signed by `ca`, with extensions `ext`. */
export function makeLeaf(
  dir: string,
  ca: Pem,
  name: string,
  cn: string,
  ext: string,
  kind: KeyKind = "rsa",
): Pem {
  openssl(
    [
      "req",
      ...newKey(kind),
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    ],
    dir,
  );
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    ],
    dir,
  );
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

export const SERVER_EXT =
  "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
export const CLIENT_EXT = "extendedKeyUsage=clientAuth\n";
