/**
 * Signed commands over a real Mosquitto: with `commands.signing.public_key` configured, a command
 * signed by the hypervisor's Ed25519 key is executed; a wrong key, a stale timestamp and a
 * replayed nonce are refused and the simulator's register is unchanged.
 */
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signingInput } from "../../agent/commands/signing.js";
import { addSimDevice, type SimUnit } from "../../sim/modbus/index.js";
import { type Rig, baseConfig, disposeRig, startRig } from "./commands-fixtures.js";

const GW = "gw-signed";
const hyperKey = generateKeyPairSync("ed25519");
const attacker = generateKeyPairSync("ed25519");
let rig: Rig;
let dali: SimUnit;

beforeAll(async () => {
  const pem = hyperKey.publicKey.export({ type: "spki", format: "pem" }).toString();
  rig = await startRig(
    GW,
    (sim) => (dali = addSimDevice(sim, 3, "dali-gateway")),
    (url, port) => {
      const cfg = baseConfig(GW, url, port);
      return {
        ...cfg,
        commands: { ...(cfg.commands as object), signing: { public_key: pem, max_skew: "30s" } },
      };
    },
  );
});

afterAll(() => rig && disposeRig(rig));

function signed(
  body: Record<string, unknown>,
  opts: { key?: typeof hyperKey.privateKey; ts?: number; nonce?: string } = {},
) {
  const req = {
    ...body,
    ts: opts.ts ?? Date.now(),
    nonce: opts.nonce ?? randomBytes(12).toString("base64url"),
  };
  return {
    ...req,
    sig: sign(null, signingInput(GW, "write", req), opts.key ?? hyperKey.privateKey).toString(
      "base64",
    ),
  };
}

describe("signed commands", () => {
  it("executes a validly signed command", async () => {
    const r = await rig.hv.request(
      "write",
      signed({ id: "s-ok", device: "dali", point: "lamp1_level", value: 30 }),
    );
    expect(r).toMatchObject({ id: "s-ok", ok: true });
    expect(dali.bank.holding[1]).toBe(30);
  });

  it.each([
    [
      "an unsigned command",
      () => ({ id: "s-none", device: "dali", point: "lamp1_level", value: 70 }),
      /accepts only signed commands/,
    ],
    [
      "a wrong key",
      () =>
        signed(
          { id: "s-key", device: "dali", point: "lamp1_level", value: 70 },
          { key: attacker.privateKey },
        ),
      /bad signature/,
    ],
    [
      "a stale timestamp",
      () =>
        signed(
          { id: "s-old", device: "dali", point: "lamp1_level", value: 70 },
          { ts: Date.now() - 60_000 },
        ),
      /stale or future timestamp/,
    ],
  ])("refuses %s", async (_what, make, message) => {
    const r = await rig.hv.request("write", make());
    expect(r).toMatchObject({ ok: false, error: { code: "CommandSignature" } });
    expect(r.error?.message).toMatch(message);
    expect(dali.bank.holding[1]).toBe(30);
  });

  it("refuses a replayed nonce, even under a new command id", async () => {
    const first = signed(
      { id: "s-n1", device: "dali", point: "lamp1_level", value: 50 },
      { nonce: "nonce-replay-0001" },
    );
    expect((await rig.hv.request("write", first)).ok).toBe(true);
    dali.bank.holding[1] = 30;
    const replay = await rig.hv.request("write", first);
    expect(replay).toMatchObject({
      ok: false,
      error: { code: "CommandSignature", message: expect.stringMatching(/replayed nonce/) },
    });
    const reused = signed(
      { id: "s-n2", device: "dali", point: "lamp1_level", value: 55 },
      { nonce: "nonce-replay-0001" },
    );
    expect((await rig.hv.request("write", reused)).error?.message).toMatch(/replayed nonce/);
    expect(dali.bank.holding[1]).toBe(30);
  });

  it("still accepts local technician commands without a signature", async () => {
    const r = await rig.run.cp.localWrite({
      device: "dali",
      point: "lamp1_level",
      value: 10,
      commandId: "local-1",
    });
    expect(r).toMatchObject({ ok: true, readBack: 10, commandId: "local-1" });
    expect(dali.bank.holding[1]).toBe(10);
    await expect(
      rig.run.cp.localWrite({
        device: "dali",
        point: "lamp1_level",
        value: 1000,
        commandId: "local-2",
      }),
    ).rejects.toThrow(/EE0503 .*above the maximum 100/);
    expect(rig.run.cp.audit.list(1)[0]).toMatchObject({ who: "local", outcome: "refused" });
  });
});
