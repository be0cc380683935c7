/**
 * Renewal before expiry keeps data flowing: a gateway with a short-lived certificate publishes
 * telemetry continuously over mTLS; the renewal task obtains a new certificate over mTLS, proves
 * it against the broker, swaps it in, and the publisher reconnects with it. Every sequence
 * number reaches the platform, and after the old certificate has expired the box still connects.
 */
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureEnrolled } from "../../agent/provision/enrol.js";
import type { EnrolledTls } from "../../agent/provision/enrolment.js";
import { renewalDueAt, startRenewal } from "../../agent/provision/renew.js";
import { readProvisionStatus } from "../../agent/provision/state.js";
import { waitFor } from "../helpers/ports.js";
import { PREFIX, Platform } from "./provision-fixture.js";

let platform: Platform;
let work: string;

beforeAll(async () => {
  // Certificates valid 20 s (plus the service's 60 s of back-dating for slow clocks): short
  // enough to watch the old one expire, long enough for a renewal on a loaded CI machine.
  platform = await Platform.start({ validity: 20_000 });
  work = mkdtempSync(join(tmpdir(), "eclor-prov-renew-"));
});
afterAll(async () => {
  await platform?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

const connect = (tls: EnrolledTls, pair?: { cert: string; key: string }) =>
  mqtt.connectAsync(tls.url, {
    protocolVersion: 5,
    clientId: tls.gatewayId,
    reconnectPeriod: 0,
    ca: readFileSync(tls.caPath),
    cert: pair?.cert ?? readFileSync(tls.certPath),
    key: pair?.key ?? readFileSync(tls.keyPath),
  });

describe("provisioning: certificate renewal", () => {
  it("renews before expiry over mTLS, keeps the old pair until the new one works, no telemetry gap", async () => {
    const gw = "gw-renew-01";
    const stateDir = join(work, gw);
    const tls0 = await ensureEnrolled({
      stateDir,
      bundlePath: platform.writeBundle(work, gw),
      logger: platform.logger,
      maxAttempts: 1,
    });
    const old = {
      cert: readFileSync(tls0.certPath, "utf8"),
      key: readFileSync(tls0.keyPath, "utf8"),
    };
    const oldNotAfter = Date.parse(tls0.certificate.notAfter);

    const plat = await platform.platformClient();
    const seqs: number[] = [];
    plat.on("message", (_t, m) => seqs.push((JSON.parse(m.toString()) as { seq: number }).seq));
    await plat.subscribeAsync(`${PREFIX}/${gw}/telemetry`, { qos: 1 });

    let client: MqttClient = await connect(tls0);
    let pending: EnrolledTls | undefined;
    let renewedSerial: string | undefined;
    const renewal = startRenewal({
      stateDir,
      logger: platform.logger,
      renewBeforeMs: 15_000,
      retryMinMs: 200,
      timeoutMs: 5_000,
      onRenewed: (tls) => {
        renewedSerial = tls.certificate.serial;
        pending = tls;
        // Once is enough here: with the back-dating, the new certificate would be due again soon.
        renewal.stop();
      },
    });
    expect(readProvisionStatus(stateDir).renewal?.due_at).toBe(
      new Date(
        renewalDueAt(tls0.certificate.notBefore, tls0.certificate.notAfter, 15_000),
      ).toISOString(),
    );

    // The publisher: one reading at a time, never skipping a seq; switches certificate between
    // two publishes when the renewal says the new one is in place.
    let seq = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        if (pending) {
          const next = pending;
          pending = undefined;
          await client.endAsync();
          client = await connect(next);
        }
        await client.publishAsync(`${PREFIX}/${gw}/telemetry`, JSON.stringify({ seq: seq + 1 }), {
          qos: 1,
        });
        seq++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await waitFor(() => renewedSerial, 30_000, "renewal");
    expect(renewedSerial).not.toBe(tls0.certificate.serial);
    // Keep publishing past the old certificate's expiry.
    await waitFor(() => Date.now() > oldNotAfter + 500, 30_000, "old certificate expiry");
    const target = seq + 5;
    await waitFor(() => seq >= target, 10_000, "more telemetry after the old certificate expired");
    stop = true;
    await loop;
    renewal.stop();
    await waitFor(() => seqs.length >= seq, 5000, "all telemetry at the platform");
    expect(seqs).toEqual(Array.from({ length: seq }, (_, i) => i + 1));

    // The old pair no longer gets in; the files on disk (the renewed pair) do.
    await expect(connect(tls0, old)).rejects.toThrow();
    const fresh = await connect(tls0);
    await fresh.endAsync();
    await client.endAsync();
    await plat.endAsync();
    const st = readProvisionStatus(stateDir);
    expect(st.renewal?.status).toBe("idle");
    expect(st.renewal?.last_renewed_at).toBeTypeOf("string");
    expect(st.certificate?.serial).toBe(renewedSerial);
  }, 120_000);

  it("a renewal request signed by the wrong key is refused by the platform (proof of possession)", async () => {
    const gw = "gw-renew-02";
    const stateDir = join(work, gw);
    const tls = await ensureEnrolled({
      stateDir,
      bundlePath: platform.writeBundle(work, gw),
      logger: platform.logger,
      maxAttempts: 1,
    });
    const { exchange } = await import("../../agent/provision/exchange.js");
    const { buildCsrPem, generatePrivateKeyPem, proofPayload, signProof } =
      await import("../../agent/provision/crypto.js");
    const wrongKey = generatePrivateKeyPem();
    const csr = buildCsrPem(wrongKey, gw);
    const res = await exchange(
      {
        url: tls.url,
        ca: readFileSync(tls.caPath, "utf8"),
        cert: readFileSync(tls.certPath, "utf8"),
        key: readFileSync(tls.keyPath, "utf8"),
        clientId: `${gw}-x`,
        prefix: PREFIX,
        gatewayId: gw,
        timeoutMs: 5000,
        logger: platform.logger,
      },
      {
        v: 1,
        type: "renew",
        gateway: gw,
        request_id: "request-0001",
        csr,
        certificate: readFileSync(tls.certPath, "utf8"),
        proof: signProof(wrongKey, proofPayload(gw, "request-0001", csr)),
      },
    );
    expect(res).toMatchObject({ ok: false, error: { code: "proof_invalid" } });
  }, 60_000);
});
