/**
 * Everything that must NOT enrol a box: expired or already-used token, a certificate from the
 * wrong CA, a tampered certificate, an answer meant for another gateway, no answer at all.
 * Each is refused with a clear error, the box stays unenrolled (no cert.pem, token kept), and
 * it retries: quickly for transient faults, slowly for refusals only a new bundle fixes.
 */
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { parse } from "yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureEnrolled } from "../../agent/provision/enrol.js";
import { provisionPaths } from "../../agent/provision/files.js";
import { type EnrollResponse, requestSchema } from "../../agent/provision/protocol.js";
import { readProvisionStatus } from "../../agent/provision/state.js";
import { loadSigningCa, signCsr, type SigningCa } from "../../sim/enroll/ca.js";
import { hashToken } from "../../sim/enroll/registry.js";
import { PREFIX, Platform, makeCa } from "./provision-fixture.js";

let platform: Platform;
let work: string;
let fake: MqttClient | undefined;
let n = 0;

beforeAll(async () => {
  platform = await Platform.start({ service: false });
  work = mkdtempSync(join(tmpdir(), "eclor-prov-ref-"));
});
afterEach(async () => {
  await fake?.endAsync();
  fake = undefined;
  await platform.service?.stop();
  platform.service = undefined;
});
afterAll(async () => {
  await platform?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A misbehaving platform: answers every request with `answer(request)`. */
async function fakeResponder(
  answer: (req: { gateway: string; request_id: string; csr: string }) => EnrollResponse,
): Promise<void> {
  fake = await platform.platformClient();
  fake.on("message", (_t, payload) => {
    const req = requestSchema.parse(JSON.parse(payload.toString()));
    void fake!.publishAsync(
      `${PREFIX}/enroll/${req.gateway}/response`,
      JSON.stringify(answer(req)),
      { qos: 1 },
    );
  });
  await fake.subscribeAsync(`${PREFIX}/enroll/+/request`, { qos: 1 });
}

function fresh(gw = `gw-${++n}`) {
  const stateDir = join(work, gw);
  const bundlePath = platform.writeBundle(work, gw);
  return { gw, stateDir, bundlePath, p: provisionPaths(stateDir) };
}

async function refused(box: ReturnType<typeof fresh>, pattern: RegExp): Promise<void> {
  await expect(
    ensureEnrolled({
      stateDir: box.stateDir,
      bundlePath: box.bundlePath,
      logger: platform.logger,
      maxAttempts: 1,
      timeoutMs: 5000,
    }),
  ).rejects.toThrow(pattern);
  // Still unenrolled: no certificate, the token kept for the next try, the error recorded.
  expect(existsSync(box.p.cert)).toBe(false);
  expect(parse(readFileSync(box.bundlePath, "utf8")).enrolment.token).toBeTypeOf("string");
  const s = readProvisionStatus(box.stateDir);
  expect(s.status === "enrolling" || s.status === "failed").toBe(true);
  expect(s.last_error?.message).toMatch(pattern);
}

const ok = (req: { gateway: string; request_id: string }, certificate: string): EnrollResponse => ({
  v: 1,
  gateway: req.gateway,
  request_id: req.request_id,
  ok: true,
  certificate,
});

describe("provisioning: refusals", { timeout: 90_000 }, () => {
  let other: SigningCa;
  let right: SigningCa;
  beforeAll(() => {
    const o = makeCa(platform.dir, "other-ca");
    other = loadSigningCa(o.certPem, o.keyPem);
    right = loadSigningCa(platform.ca.certPem, platform.ca.keyPem);
  });

  it("an expired token is refused by the platform (token_expired) and marked permanent", async () => {
    await platform.startService(86_400_000);
    const box = fresh();
    const token = parse(readFileSync(box.bundlePath, "utf8")).enrolment.token as string;
    const reg = JSON.parse(readFileSync(join(platform.dir, "registry.json"), "utf8"));
    reg.tokens[hashToken(token)].expires = new Date(Date.now() - 1000).toISOString();
    writeFileSync(join(platform.dir, "registry.json"), JSON.stringify(reg));
    await refused(box, /refused the enrolment of "gw-\d+" \(token_expired\).*new bundle/);
    expect(readProvisionStatus(box.stateDir)).toMatchObject({
      status: "failed",
      last_error: { permanent: true, code: "ProvisionEnrol/token_expired" },
    });
  });

  it("a bundle whose token expired is refused on the box, before any connection", async () => {
    const box = fresh();
    const b = parse(readFileSync(box.bundlePath, "utf8"));
    b.enrolment.expires = "2020-01-01T00:00:00Z";
    writeFileSync(box.bundlePath, JSON.stringify(b));
    await refused(box, /token expired at 2020-01-01T00:00:00Z.*new bundle/);
  });

  it("a token already used by another box (another key) is refused (token_used)", async () => {
    await platform.startService(86_400_000);
    const first = fresh();
    const copy = join(work, "stolen-bundle.yaml");
    copyFileSync(first.bundlePath, copy);
    await ensureEnrolled({
      stateDir: first.stateDir,
      bundlePath: first.bundlePath,
      logger: platform.logger,
      maxAttempts: 1,
    });
    const thief = {
      ...first,
      stateDir: join(work, "thief"),
      bundlePath: copy,
      p: provisionPaths(join(work, "thief")),
    };
    await refused(thief, /\(token_used\)/);
  });

  it("a certificate signed by another CA is refused", async () => {
    await fakeResponder((req) => ok(req, signCsr(other, req.csr, 3_600_000)));
    await refused(
      fresh(),
      /issued by "CN=other-ca", not by the bundle CA "CN=platform-ca".*refused/,
    );
  });

  it("a tampered certificate (CN altered after signing) is refused", async () => {
    await fakeResponder((req) => {
      const pem = signCsr(right, req.csr, 3_600_000);
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
      const at = der.indexOf(Buffer.from(req.gateway));
      const i = at + req.gateway.length - 1;
      der[i] = der[i]! ^ 0x01; // gw-7 → gw-6: same length, DER still parses
      return ok(
        req,
        `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE-----\n`,
      );
    });
    await refused(fresh(), /signature does not verify with the bundle CA/);
  });

  it("an answer addressed to another gateway is refused", async () => {
    await fakeResponder((req) => ({
      ...ok(req, signCsr(right, req.csr, 3_600_000)),
      gateway: "gw-somewhere-else",
    }));
    await refused(fresh(), /addressed to gateway "gw-somewhere-else"/);
  });

  it("a certificate for another gateway's CN is refused", async () => {
    const victim = fresh();
    // A validly signed certificate, but answering another CSR (here the broker's, CN=localhost).
    const otherCsr = readFileSync(join(platform.dir, "server.csr"), "utf8");
    await fakeResponder((req) => ok(req, signCsr(right, otherCsr, 3_600_000)));
    await refused(victim, /is for CN "localhost", not for this gateway/);
  });

  it("wrong enrolment password, or a broker that does not chain to the bundle CA: clear errors", async () => {
    const box = fresh();
    const b = parse(readFileSync(box.bundlePath, "utf8"));
    writeFileSync(
      box.bundlePath,
      JSON.stringify({ ...b, enrolment: { ...b.enrolment, password: "wrong" } }),
    );
    await refused(
      box,
      /cannot reach the enrolment broker .*refused the enrolment identity: check enrolment.username\/password/,
    );
    const box2 = fresh();
    const b2 = parse(readFileSync(box2.bundlePath, "utf8"));
    writeFileSync(
      box2.bundlePath,
      JSON.stringify({ ...b2, platform: { ...b2.platform, ca: other.certPem } }),
    );
    await refused(
      box2,
      /cannot reach the enrolment broker .*does not chain to the bundle's platform\.ca/,
    );
  });

  it("no answer: a clear timeout, then quick retries; a fixed platform enrols the box", async () => {
    const box = fresh();
    await expect(
      ensureEnrolled({
        stateDir: box.stateDir,
        bundlePath: box.bundlePath,
        logger: platform.logger,
        maxAttempts: 2,
        retryMinMs: 50,
        timeoutMs: 300,
      }),
    ).rejects.toThrow(
      /no answer from the enrolment service on eclor\/v1\/enroll\/gw-\d+\/response.*is the platform's enrolment service running/,
    );
    const s = readProvisionStatus(box.stateDir);
    expect(s).toMatchObject({ status: "enrolling", last_error: { permanent: false } });
    expect(s.attempts).toBeGreaterThanOrEqual(2);
    // The platform comes up while the box keeps retrying: enrolment completes.
    const done = ensureEnrolled({
      stateDir: box.stateDir,
      bundlePath: box.bundlePath,
      logger: platform.logger,
      retryMinMs: 100,
      retryMaxMs: 400,
      timeoutMs: 500,
    });
    await new Promise((r) => setTimeout(r, 600));
    await platform.startService(86_400_000);
    const tls = await done;
    expect(readProvisionStatus(box.stateDir).status).toBe("enrolled");
    expect(existsSync(tls.certPath)).toBe(true);
  });

  it("a refusal only a new bundle fixes is retried slowly, re-reading the bundle file", async () => {
    await platform.startService(86_400_000);
    const box = fresh();
    const good = readFileSync(box.bundlePath, "utf8");
    const bad = parse(good);
    bad.enrolment.token = "not-a-token-the-platform-knows";
    writeFileSync(box.bundlePath, JSON.stringify(bad));
    const ac = new AbortController();
    const done = ensureEnrolled({
      stateDir: box.stateDir,
      bundlePath: box.bundlePath,
      logger: platform.logger,
      retryMinMs: 50,
      retryMaxMs: 800,
      timeoutMs: 2000,
      signal: ac.signal,
    });
    done.catch(() => undefined);
    const { waitFor } = await import("../helpers/ports.js");
    const s = await waitFor(
      () => {
        const st = readProvisionStatus(box.stateDir);
        return st.status === "failed" ? st : undefined;
      },
      5000,
      "refusal",
    );
    expect(s.last_error?.message).toMatch(/token_unknown/);
    // The retry is scheduled retryMaxMs later, not in a tight loop.
    expect(Date.parse(s.next_retry_at!) - Date.parse(s.last_error!.at)).toBeGreaterThanOrEqual(700);
    // The installer drops the right bundle: the next slow retry picks it up.
    writeFileSync(box.bundlePath, good);
    await done;
    expect(readProvisionStatus(box.stateDir).status).toBe("enrolled");
  });
});
