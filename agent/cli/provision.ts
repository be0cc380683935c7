/**
 * `eclor-edge provision --bundle FILE`: validate a provisioning bundle and enrol this box
 * (generate the key, send the CSR with the token, verify and store the certificate), printing
 * each step. `--status` shows where enrolment stands; `--renew` renews the certificate now.
 */
import type { Command } from "commander";
import { DEFAULT_STATE_DIR } from "../paths.js";
import { bold, fail, green, printJson, red, usage } from "./output.js";

interface ProvisionOpts {
  bundle?: string;
  stateDir: string;
  configOut?: string;
  timeout: string;
  attempts: string;
  check?: boolean;
  status?: boolean;
  renew?: boolean;
  json?: boolean;
}

/** A pino destination printing one readable line per step on stderr (stdout stays for results). */
function consoleDestination(json: boolean): { write(s: string): void } {
  return {
    write(s: string) {
      if (json) return;
      try {
        const o = JSON.parse(s) as { level: number; msg: string };
        const tag = o.level >= 50 ? red("error") : o.level >= 40 ? "warn" : "·";
        process.stderr.write(`${tag} ${o.msg}\n`);
      } catch {
        process.stderr.write(s);
      }
    },
  };
}

/** Run as root: give the files to the state directory's owner (the service user). */
async function handOver(opts: ProvisionOpts): Promise<void> {
  if (opts.status || opts.check) return;
  const { matchStateDirOwner } = await import("../provision/files.js");
  matchStateDirOwner(opts.stateDir);
}

export function registerProvisionCommand(program: Command): void {
  program
    .command("provision")
    .description(
      "Enrol this box with a provisioning bundle (key generated here, certificate from the platform)",
    )
    .option("-b, --bundle <file>", "provisioning bundle YAML from the platform")
    .option("--state-dir <dir>", "state directory (key, certificate)", DEFAULT_STATE_DIR)
    .option(
      "--config-out <file>",
      "write the initial configuration received from the platform here (never overwrites)",
    )
    .option("--timeout <duration>", "wait this long for the platform's answer", "60s")
    .option("--attempts <n>", "attempts before giving up on transient failures", "3")
    .option("--check", "only validate the bundle, change nothing")
    .option("--status", "show the enrolment status and exit")
    .option("--renew", "renew the certificate now (the box must be enrolled)")
    .option("--json", "machine-readable result")
    .addHelpText(
      "after",
      "\nExit codes: 0 enrolled, 1 enrolment failed (network, refusal, bad certificate), 2 bad bundle or arguments.\nThe enrolment state lives in <state-dir>/provision/ (see docs/operations.md, Provisioning).",
    )
    .action(async (opts: ProvisionOpts) => {
      const json = Boolean(opts.json);
      try {
        const { readProvisionStatus, describeProvisionStatus } =
          await import("../provision/state.js");
        if (opts.status) {
          const s = readProvisionStatus(opts.stateDir);
          if (json) printJson(s);
          else process.stdout.write(`${describeProvisionStatus(s)}\n`);
          return;
        }
        const { duration } = await import("../../config/common.js");
        const t = duration.safeParse(opts.timeout);
        if (!t.success)
          throw usage(`--timeout: expected a duration like "60s", got "${opts.timeout}"`);
        const attempts = Number(opts.attempts);
        if (!Number.isInteger(attempts) || attempts < 1 || attempts > 1000) {
          throw usage(`--attempts: expected an integer 1..1000, got "${opts.attempts}"`);
        }
        const { createLogger } = await import("../log.js");
        const logger = createLogger({ destination: consoleDestination(json) });
        if (opts.renew) {
          const { renewOnce } = await import("../provision/renew.js");
          const tls = await renewOnce({
            stateDir: opts.stateDir,
            logger,
            renewBeforeMs: 0,
            timeoutMs: t.data,
          });
          const { updateState } = await import("../provision/state.js");
          updateState(opts.stateDir, { certificate: tls.certificate });
          if (json) printJson({ ok: true, certificate: tls.certificate });
          else
            process.stdout.write(
              `${green("renewed")}: certificate valid until ${tls.certificate.notAfter}\n`,
            );
          await handOver(opts);
          return;
        }
        if (!opts.bundle) throw usage("--bundle FILE is required (or --status / --renew)");
        const { loadBundleFile } = await import("../provision/bundle.js");
        const bundle = loadBundleFile(opts.bundle);
        if (opts.check) {
          if (json)
            printJson({
              ok: true,
              gateway: bundle.gateway.id,
              expires: bundle.enrolment.expires,
              token: Boolean(bundle.enrolment.token),
            });
          else
            process.stdout.write(
              `${green("ok")} ${opts.bundle}: gateway ${bundle.gateway.id}, token ${bundle.enrolment.token ? `valid until ${bundle.enrolment.expires}` : "already used"}\n`,
            );
          return;
        }
        const { ensureEnrolled } = await import("../provision/enrol.js");
        const tls = await ensureEnrolled({
          stateDir: opts.stateDir,
          bundlePath: opts.bundle,
          logger,
          timeoutMs: t.data,
          maxAttempts: attempts,
          stopOnPermanent: true,
          retryMinMs: 2_000,
          retryMaxMs: 30_000,
        });
        let configWritten: string | undefined;
        if (opts.configOut && tls.configPath) {
          const { copyFileSync, constants } = await import("node:fs");
          try {
            copyFileSync(tls.configPath, opts.configOut, constants.COPYFILE_EXCL);
            configWritten = opts.configOut;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
            logger.warn(
              `${opts.configOut} exists: left as it is (the received configuration is in ${tls.configPath})`,
            );
          }
        }
        if (json) {
          printJson({ ok: true, status: readProvisionStatus(opts.stateDir), tls, configWritten });
        } else {
          process.stdout.write(
            `${green("enrolled")} as ${bold(tls.gatewayId)}: certificate serial ${tls.certificate.serial}, valid until ${tls.certificate.notAfter}\n` +
              `  key ${tls.keyPath} (0600), certificate ${tls.certPath}, CA ${tls.caPath}\n` +
              `  broker ${tls.url} (mTLS)\n` +
              (tls.configPath
                ? `  initial configuration ${configWritten ?? tls.configPath}\n`
                : ""),
          );
        }
      } catch (e) {
        await handOver(opts);
        fail(e, json);
      }
      await handOver(opts);
    });
}
