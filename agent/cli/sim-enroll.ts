/**
 * `eclor-edge sim enroll`: the reference enrolment service (the platform's side of the
 * exchange), and `eclor-edge sim enroll-bundle`: issue a token and write a provisioning bundle.
 */
import type { Command } from "commander";
import { fail, green, usage } from "./output.js";

interface ServeOpts {
  caKey: string;
  caCert: string;
  url: string;
  prefix: string;
  registry: string;
  validity: string;
  configDir?: string;
  brokerCa?: string;
  cert?: string;
  key?: string;
  username?: string;
  password?: string;
}

interface BundleOpts {
  gateway: string;
  commune: string;
  name?: string;
  url: string;
  enrolmentUrl?: string;
  prefix?: string;
  caCert: string;
  registry: string;
  ttl: string;
  username?: string;
  password?: string;
  out?: string;
}

async function parseDuration(flag: string, s: string): Promise<number> {
  const { duration } = await import("../../config/common.js");
  const r = duration.safeParse(s);
  if (!r.success) throw usage(`${flag}: expected a duration like "365d" or "10m", got "${s}"`);
  return r.data;
}

async function readPem(flag: string, path: string): Promise<string> {
  const { readFileSync } = await import("node:fs");
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw usage(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

export function registerSimEnrollCommands(sim: Command): void {
  sim
    .command("enroll")
    .description("Reference enrolment service: sign gateway CSRs after checking token and CN")
    .requiredOption("--ca-key <file>", "platform CA private key (PEM, RSA)")
    .requiredOption("--ca-cert <file>", "platform CA certificate (PEM)")
    .requiredOption("--url <url>", "broker to serve on, e.g. mqtts://127.0.0.1:8883")
    .option("--prefix <prefix>", "topic prefix", "eclor/v1")
    .option(
      "--registry <file>",
      "token registry (JSON, written by enroll-bundle)",
      "enroll-registry.json",
    )
    .option("--validity <duration>", "validity of issued certificates", "365d")
    .option(
      "--config-dir <dir>",
      "initial configurations: <dir>/<gateway>.yaml or <dir>/default.yaml",
    )
    .option("--broker-ca <file>", "CA of the broker's certificate (default: --ca-cert)")
    .option("--cert <file>", "client certificate of the platform identity (mTLS)")
    .option("--key <file>", "client key of the platform identity (mTLS)")
    .option("--username <user>", "broker user name of the platform identity")
    .option("--password <password>", "broker password of the platform identity")
    .action(async (o: ServeOpts) => {
      try {
        const validityMs = await parseDuration("--validity", o.validity);
        const { loadSigningCa } = await import("../../sim/enroll/ca.js");
        const { TokenRegistry } = await import("../../sim/enroll/registry.js");
        const { EnrollService } = await import("../../sim/enroll/service.js");
        const { createLogger } = await import("../log.js");
        const ca = loadSigningCa(
          await readPem("--ca-cert", o.caCert),
          await readPem("--ca-key", o.caKey),
        );
        if ((o.cert === undefined) !== (o.key === undefined))
          throw usage("--cert and --key go together");
        const svc = new EnrollService({
          url: o.url,
          prefix: o.prefix,
          ca,
          registry: new TokenRegistry(o.registry),
          validityMs,
          configDir: o.configDir,
          logger: createLogger(),
          connect: {
            clientId: `enroll-service-${process.pid}`,
            ca: o.brokerCa ? await readPem("--broker-ca", o.brokerCa) : ca.certPem,
            ...(o.cert && o.key
              ? { cert: await readPem("--cert", o.cert), key: await readPem("--key", o.key) }
              : {}),
            ...(o.username ? { username: o.username } : {}),
            ...(o.password ? { password: o.password } : {}),
          },
        });
        await svc.start();
        const stop = () => void svc.stop().then(() => process.exit(0));
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      } catch (e) {
        fail(e);
      }
    });

  sim
    .command("enroll-bundle")
    .description(
      "Issue a single-use enrolment token and write the provisioning bundle for a gateway",
    )
    .requiredOption("--gateway <id>", "gateway id (becomes the certificate CN)")
    .requiredOption("--commune <name>", "commune name or INSEE code")
    .requiredOption("--url <url>", "mTLS broker URL for the gateway, e.g. mqtts://platform:8883")
    .requiredOption("--ca-cert <file>", "platform CA certificate (PEM)")
    .option("--name <name>", "human name of the gateway")
    .option("--enrolment-url <url>", "enrolment listener URL (default: --url)")
    .option("--prefix <prefix>", "topic prefix (default eclor/v1)")
    .option("--registry <file>", "token registry shared with `sim enroll`", "enroll-registry.json")
    .option("--ttl <duration>", "token lifetime", "7d")
    .option("--username <user>", "enrolment identity on the broker")
    .option("--password <password>", "password of the enrolment identity")
    .option("--out <file>", "write the bundle here (default: stdout)")
    .action(async (o: BundleOpts) => {
      try {
        const ttlMs = await parseDuration("--ttl", o.ttl);
        const { TokenRegistry } = await import("../../sim/enroll/registry.js");
        const { mintBundle } = await import("../../sim/enroll/mint.js");
        const { bundleToYaml, validateBundle } = await import("../provision/bundle.js");
        const raw = mintBundle(new TokenRegistry(o.registry), {
          gateway: o.gateway,
          commune: o.commune,
          name: o.name,
          url: o.url,
          enrolmentUrl: o.enrolmentUrl,
          prefix: o.prefix,
          caPem: await readPem("--ca-cert", o.caCert),
          ttlMs,
          username: o.username,
          password: o.password,
        });
        validateBundle(raw, "generated bundle");
        const text = bundleToYaml(raw);
        if (!o.out) {
          process.stdout.write(text);
          return;
        }
        const { writeFileAtomic } = await import("../provision/files.js");
        writeFileAtomic(o.out, text, 0o600);
        process.stderr.write(
          `${green("ok")} bundle for ${o.gateway} written to ${o.out} (token valid ${o.ttl})\n`,
        );
      } catch (e) {
        fail(e);
      }
    });
}
