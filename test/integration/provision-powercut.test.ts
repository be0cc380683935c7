/**
 * Power cut at every step: `eclor-edge provision` is SIGKILLed right after each step of the
 * enrolment (and of a renewal) — a real SIGKILL, no cleanup — then started again. Enrolment must
 * complete, with a certificate that matches the key on the box, and the single-use token must
 * have bought exactly one certificate. Uses the built CLI (dist/, built by `npm test`'s pretest).
 */
import { spawn } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureEnrolled } from "../../agent/provision/enrol.js";
import { provisionPaths } from "../../agent/provision/files.js";
import { readProvisionStatus } from "../../agent/provision/state.js";
import { Platform } from "./provision-fixture.js";

const main = fileURLToPath(new URL("../../dist/agent/main.js", import.meta.url));
let platform: Platform;
let work: string;

beforeAll(async () => {
  platform = await Platform.start();
  work = mkdtempSync(join(tmpdir(), "eclor-prov-cut-"));
});
afterAll(async () => {
  await platform?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

function cli(
  args: string[],
  crashAfter?: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
    delete env.ECLOR_EDGE_CRASH_AFTER;
    if (crashAfter) env.ECLOR_EDGE_CRASH_AFTER = crashAfter;
    const p = spawn(process.execPath, [main, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("exit", (code, signal) => resolve({ code, signal, out, err }));
  });
}

function assertEnrolled(stateDir: string, gw: string, bundlePath: string): void {
  const p = provisionPaths(stateDir);
  const cert = new X509Certificate(readFileSync(p.cert));
  expect(cert.subject).toBe(`CN=${gw}`);
  expect(cert.checkPrivateKey(createPrivateKey(readFileSync(p.key)))).toBe(true);
  expect(cert.verify(new X509Certificate(platform.ca.certPem).publicKey)).toBe(true);
  expect(readProvisionStatus(stateDir)).toMatchObject({ status: "enrolled", step: "done" });
  expect(parse(readFileSync(p.bundle, "utf8")).enrolment.token).toBeUndefined();
  expect(parse(readFileSync(bundlePath, "utf8")).enrolment.token).toBeUndefined();
}

const enrolSteps = [
  "bundle",
  "key",
  "csr",
  "request",
  "published",
  "response",
  "cert",
  "state",
  "token",
];

describe("provisioning: power cut at every step", () => {
  it.each(enrolSteps)(
    "SIGKILL after '%s', restart: enrolment completes with one certificate",
    async (step) => {
      const gw = `gw-cut-${step}`;
      const stateDir = join(work, gw);
      const bundlePath = platform.writeBundle(work, gw);
      const args = [
        "provision",
        "--bundle",
        bundlePath,
        "--state-dir",
        stateDir,
        "--timeout",
        "10s",
        "--attempts",
        "1",
      ];
      const cut = await cli(args, step);
      expect(cut.signal, cut.err).toBe("SIGKILL");
      const again = await cli(args);
      expect(again.code, again.err).toBe(0);
      expect(again.out).toContain(`enrolled as ${gw}`);
      assertEnrolled(stateDir, gw, bundlePath);
      // The token bought one certificate: the one on the box (re-sent after a cut, not re-issued).
      const reg = JSON.parse(readFileSync(join(platform.dir, "registry.json"), "utf8")) as {
        tokens: Record<string, { gateway: string; used?: { certificate: string } }>;
      };
      const entries = Object.values(reg.tokens).filter((t) => t.gateway === gw);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.used?.certificate).toBe(
        readFileSync(provisionPaths(stateDir).cert, "utf8"),
      );
    },
    90_000,
  ); // two or three CLI processes per case; slow when the machine is loaded

  // renew-csr is like csr above; these three are where a renewal can go wrong.
  it.each(["renew-published", "renew-cert", "renew-promote"])(
    "SIGKILL during renewal after '%s', restart: a consistent new pair, never a mismatched one",
    async (step) => {
      const gw = `gw-${step}`;
      const stateDir = join(work, gw);
      const bundlePath = platform.writeBundle(work, gw);
      // Enrolment itself is covered above: in-process here, to save a process start.
      await ensureEnrolled({ stateDir, bundlePath, logger: platform.logger, maxAttempts: 1 });
      const before = readFileSync(provisionPaths(stateDir).cert, "utf8");
      const renew = ["provision", "--renew", "--state-dir", stateDir, "--timeout", "10s"];
      const cut = await cli(renew, step);
      expect(cut.signal, cut.err).toBe("SIGKILL");
      // Whatever the cut left, the box has a consistent pair right now (old or new).
      const p = provisionPaths(stateDir);
      const { loadEnrolment } = await import("../../agent/provision/enrolment.js");
      expect(loadEnrolment(stateDir)?.expired).toBe(false);
      const again = await cli(renew);
      expect(again.code, again.err).toBe(0);
      const after = readFileSync(p.cert, "utf8");
      expect(after).not.toBe(before);
      expect(
        new X509Certificate(after).checkPrivateKey(createPrivateKey(readFileSync(p.key))),
      ).toBe(true);
    },
    90_000,
  );
});
