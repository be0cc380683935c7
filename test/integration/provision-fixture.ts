/**
 * Shared setup of the provisioning tests: a PKI made with openssl, a real Mosquitto with an mTLS
 * listener (identity = certificate CN) and an enrolment listener (password + %c ACL) configured
 * like docs/provisioning/, and the reference enrolment service.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { pino, type Logger } from "pino";
import { writeFileAtomic } from "../../agent/provision/files.js";
import { bundleToYaml } from "../../agent/provision/bundle.js";
import { loadSigningCa } from "../../sim/enroll/ca.js";
import { mintBundle } from "../../sim/enroll/mint.js";
import { TokenRegistry } from "../../sim/enroll/registry.js";
import { EnrollService } from "../../sim/enroll/service.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { freePort } from "../helpers/ports.js";
import { makeCa, makeLeaf } from "../helpers/pki.js";

export const PREFIX = "eclor/v1";
export const ENROL_USER = "enrol";
export const ENROL_PASSWORD = "enrol-listener-password";

export { makeCa, makeLeaf } from "../helpers/pki.js";

export class Platform {
  readonly dir = mkdtempSync(join(tmpdir(), "eclor-prov-"));
  ca!: ReturnType<typeof makeCa>;
  server!: { cert: string; key: string };
  platformId!: { cert: string; key: string };
  broker!: Mosquitto;
  mtlsPort = 0;
  enrolPort = 0;
  registry!: TokenRegistry;
  service?: EnrollService;
  readonly logLines: string[] = [];
  readonly logger: Logger = pino(
    { level: "debug" },
    { write: (s: string) => void this.logLines.push(s) },
  );

  get mtlsUrl(): string {
    return `mqtts://127.0.0.1:${this.mtlsPort}`;
  }
  get enrolUrl(): string {
    return `mqtts://127.0.0.1:${this.enrolPort}`;
  }

  static async start(opts: { validity?: number; service?: boolean } = {}): Promise<Platform> {
    const p = new Platform();
    p.ca = makeCa(p.dir, "platform-ca");
    p.server = makeLeaf(
      p.dir,
      p.ca,
      "server",
      "localhost",
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    p.platformId = makeLeaf(p.dir, p.ca, "platform", "platform", "extendedKeyUsage=clientAuth\n");
    execFileSync("mosquitto_passwd", [
      "-b",
      "-c",
      join(p.dir, "passwd"),
      ENROL_USER,
      ENROL_PASSWORD,
    ]);
    // Mosquitto started as root drops to its own user before reading the password and ACL files.
    // (Test keys only: on a real broker these files belong to the mosquitto user.)
    chmodSync(p.dir, 0o755);
    for (const f of readdirSync(p.dir)) chmodSync(join(p.dir, f), 0o644);
    // The ACL files of docs/provisioning/, used as they are.
    const docs = new URL("../../docs/provisioning/", import.meta.url);
    writeFileSync(join(p.dir, "acl-gateways"), readFileSync(new URL("acl-gateways", docs), "utf8"));
    writeFileSync(
      join(p.dir, "acl-enrolment"),
      readFileSync(new URL("acl-enrolment", docs), "utf8"),
    );
    p.mtlsPort = await freePort();
    p.enrolPort = await freePort();
    const tls = `cafile ${p.ca.cert}\ncertfile ${p.server.cert}\nkeyfile ${p.server.key}\n`;
    p.broker = await Mosquitto.start({
      port: p.mtlsPort,
      listenerConfig: [
        "per_listener_settings true",
        `listener ${p.mtlsPort} 127.0.0.1`,
        tls + "require_certificate true\nuse_identity_as_username true",
        `acl_file ${join(p.dir, "acl-gateways")}`,
        `listener ${p.enrolPort} 127.0.0.1`,
        tls + "require_certificate false\nallow_anonymous false",
        `password_file ${join(p.dir, "passwd")}`,
        `acl_file ${join(p.dir, "acl-enrolment")}`,
      ].join("\n"),
    });
    p.registry = new TokenRegistry(join(p.dir, "registry.json"));
    if (opts.service !== false) await p.startService(opts.validity ?? 2 * 86_400_000);
    return p;
  }

  async startService(validityMs: number, configDir?: string): Promise<EnrollService> {
    await this.service?.stop();
    this.service = new EnrollService({
      url: this.mtlsUrl,
      prefix: PREFIX,
      ca: loadSigningCa(this.ca.certPem, this.ca.keyPem),
      registry: this.registry,
      validityMs,
      configDir,
      logger: this.logger,
      connect: {
        clientId: `svc-${Math.random().toString(16).slice(2)}`,
        ...this.clientTls(this.platformId),
      },
    });
    await this.service.start();
    return this.service;
  }

  clientTls(id: { cert: string; key: string }): { ca: string; cert: string; key: string } {
    return {
      ca: this.ca.certPem,
      cert: readFileSync(id.cert, "utf8"),
      key: readFileSync(id.key, "utf8"),
    };
  }

  /** The platform identity on the mTLS listener (reads everything under the prefix). */
  async platformClient(): Promise<MqttClient> {
    return mqtt.connectAsync(this.mtlsUrl, {
      protocolVersion: 5,
      clientId: `plat-${Math.random().toString(16).slice(2)}`,
      ...this.clientTls(this.platformId),
    });
  }

  /** Issue a token and write the bundle file; returns its path. */
  writeBundle(dir: string, gateway: string, ttlMs = 3_600_000): string {
    const b = mintBundle(this.registry, {
      gateway,
      commune: "Volmerange-les-Mines",
      url: this.mtlsUrl,
      enrolmentUrl: this.enrolUrl,
      caPem: this.ca.certPem,
      ttlMs,
      username: ENROL_USER,
      password: ENROL_PASSWORD,
    });
    const path = join(dir, `${gateway}-bundle.yaml`);
    writeFileAtomic(path, bundleToYaml(b), 0o600);
    return path;
  }

  async dispose(): Promise<void> {
    await this.service?.stop();
    await this.broker?.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
