import type { StatusView } from "../../agent/health/schema.js";
import { generateKeyPairSync, sign } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CommandDispatcher, type InboundMessage } from "../../agent/commands/dispatcher.js";
import { responseSchema, resultSchemas } from "../../agent/commands/schemas.js";
import { CommandService, type ControlTarget } from "../../agent/commands/service.js";
import { SignatureVerifier, signingInput } from "../../agent/commands/signing.js";
import type { Reading } from "../../drivers/driver.js";
import { FakeTarget, TempDb, makeRouter, silent } from "./commands-helpers.js";

class Target extends FakeTarget implements ControlTarget {
  readonly version = "0.1.0-test";
  readonly startedAt = Date.now() - 5000;
  reads: string[] = [];
  read(device: string, points?: readonly string[]): Promise<Reading[]> {
    this.reads.push(device);
    return Promise.resolve(
      (points ?? ["dim"]).map((p) => ({
        device,
        point: p,
        ts: 1000,
        value: 42,
        unit: "%",
        quality: "good" as const,
      })),
    );
  }
  status(): StatusView {
    return {
      gateway: { id: "gw" },
      version: "0.1.0",
      config_version: "3f9a61c0d2b4",
      pid: 1,
      started_at: "2026-11-25T12:00:00.000Z",
      now: 1795_000_000,
      status: "ok",
      reasons: [],
      event_loop: { lag_p99_ms: 1, lag_max_ms: 2 },
      uplink: { connected: true, broker: "mqtt://127.0.0.1:1883", backlog: 0 },
      store: {
        writable: true,
        path: "/tmp/s.db",
        bytes: 0,
        max_bytes: 1,
        unsent: 0,
        gaps: 0,
        dropped_readings: 0,
      },
      drivers: [],
    };
  }
  history() {
    return {
      epoch: "e1",
      records: [{ seq: 1, n: "lamp-1/dim", t: 1, v: 2 }],
      next_after_seq: null,
    };
  }
  replay(from: number, to: number) {
    return Promise.resolve({
      epoch: "e1",
      from_seq: from,
      to_seq: to,
      count: to - from + 1,
      missing: 0,
      never_assigned: null,
    });
  }
  resync() {
    return Promise.resolve(["eclor/v1/gw-1/state"]);
  }
}

let tmp: TempDb;
let target: Target;
let sent: {
  topic: string;
  payload: Record<string, unknown>;
  correlationData: Buffer | undefined;
}[];
beforeEach(() => {
  tmp = new TempDb();
  target = new Target();
  sent = [];
});
afterEach(() => tmp.dispose());

function setup(verifier?: SignatureVerifier) {
  const { router } = makeRouter(tmp.db, target);
  const service = new CommandService({ target, router, verifier, timeoutMs: 2000, logger: silent });
  const dispatcher = new CommandDispatcher({
    prefix: "eclor/v1",
    gatewayId: "gw-1",
    service,
    logger: silent,
    publisher: {
      publish: (topic, payload, correlationData) => {
        sent.push({
          topic,
          payload: JSON.parse(payload) as Record<string, unknown>,
          correlationData,
        });
        return Promise.resolve();
      },
    },
  });
  return { service, dispatcher };
}

const msg = (
  name: string,
  payload: unknown,
  extra: Partial<InboundMessage> = {},
): InboundMessage => ({
  topic: `eclor/v1/gw-1/cmd/${name}`,
  payload: Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload)),
  ...extra,
});

async function ask(
  name: string,
  payload: unknown,
  extra: Partial<InboundMessage> = {},
  verifier?: SignatureVerifier,
) {
  const { dispatcher } = setup(verifier);
  await dispatcher.handle(msg(name, payload, extra));
  expect(sent).toHaveLength(1);
  const res = sent[0]!;
  expect(responseSchema.safeParse(res.payload).success).toBe(true);
  return res;
}

describe("MQTT command dispatcher", () => {
  it("answers on res/<name> without a response topic", async () => {
    const r = await ask("ping", { id: "p1" });
    expect(r.topic).toBe("eclor/v1/gw-1/res/ping");
    expect(r.payload).toMatchObject({
      id: "p1",
      ok: true,
      result: { pong: true, version: "0.1.0-test" },
    });
    expect(resultSchemas.ping.safeParse(r.payload.result).success).toBe(true);
  });

  it("answers on the MQTT 5 response topic with the correlation data", async () => {
    const corr = Buffer.from("corr-123");
    const r = await ask(
      "config/get",
      { id: "g1" },
      { responseTopic: "hyper/replies/7", correlationData: corr },
    );
    expect(r.topic).toBe("hyper/replies/7");
    expect(r.correlationData).toEqual(corr);
    // No config manager in this setup: an error, not silence.
    expect(r.payload).toMatchObject({ id: "g1", ok: false, error: { code: "CommandRefused" } });
  });

  it("writes through the router and reports the result", async () => {
    const r = await ask("write", { id: "w1", device: "lamp-1", point: "dim", value: 40 });
    expect(r.payload).toEqual({
      id: "w1",
      ok: true,
      result: { device: "lamp-1", results: [{ point: "dim", value: 40, ok: true, read_back: 40 }] },
    });
    expect(resultSchemas.write.safeParse((r.payload as { result: unknown }).result).success).toBe(
      true,
    );
    expect(target.writes).toHaveLength(1);
  });

  it("writes several points in the given order", async () => {
    await ask("write", { id: "w2", device: "lamp-1", values: { on: true, dim: 10 } });
    expect(target.writes.map((w) => w.point)).toEqual(["on", "dim"]);
  });

  it.each([
    [
      "unknown command",
      "reboot",
      { id: "u1" },
      "CommandUnknown",
      "u1",
      /unknown command "reboot" — known commands: ping, status, write/,
    ],
    ["malformed JSON", "write", "{not json", "CommandInvalid", null, /malformed JSON/],
    ["a JSON array", "ping", [1, 2], "CommandInvalid", null, /expected a JSON object/],
    ["missing id", "ping", {}, "CommandInvalid", null, /id: missing/],
    [
      "missing device",
      "write",
      { id: "m1", point: "dim", value: 3 },
      "CommandInvalid",
      "m1",
      /device: missing/,
    ],
    [
      "missing value",
      "write",
      { id: "m2", device: "lamp-1", point: "dim" },
      "CommandInvalid",
      "m2",
      /value: missing/,
    ],
    [
      "wrong type of a field",
      "write",
      { id: "m3", device: "lamp-1", point: "dim", value: 3, verify: "yes" },
      "CommandInvalid",
      "m3",
      /verify: .*boolean/,
    ],
    [
      "an unknown field",
      "ping",
      { id: "m4", force: true },
      "CommandInvalid",
      "m4",
      /force: unknown key/,
    ],
    ["a numeric id", "ping", { id: 7 }, "CommandInvalid", null, /id: expected a command id/],
    [
      "a reversed history range",
      "history",
      { id: "h", from: 10, to: 5 },
      "CommandInvalid",
      "h",
      /to: must not be before from/,
    ],
    [
      "a point without device in history",
      "history",
      { id: "h2", point: "dim", from: 1, to: 5 },
      "CommandInvalid",
      "h2",
      /device: missing/,
    ],
    [
      "out of range write",
      "write",
      { id: "o", device: "lamp-1", point: "dim", value: 101 },
      "CommandRefused",
      "o",
      /above the maximum 100/,
    ],
    [
      "unknown device read",
      "read",
      { id: "rd", device: "ghost" },
      "DeviceUnknown",
      "rd",
      /unknown device "ghost"/,
    ],
    [
      "unknown point read",
      "read",
      { id: "rp", device: "lamp-1", points: ["zz"] },
      "PointUnknown",
      "rp",
      /no point "zz"/,
    ],
  ])("answers %s with an error response", async (_what, name, payload, code, id, message) => {
    const r = await ask(name, payload);
    expect(r.payload).toMatchObject({ id, ok: false, error: { code } });
    expect((r.payload.error as { message: string }).message).toMatch(message);
    expect(target.writes).toHaveLength(0);
  });

  it("refuses a retained request (it would run again at every reconnect)", async () => {
    const r = await ask(
      "write",
      { id: "ret", device: "lamp-1", point: "dim", value: 1 },
      { retain: true },
    );
    expect(r.payload).toMatchObject({ ok: false, error: { code: "CommandRefused" } });
    expect(target.writes).toHaveLength(0);
  });

  it("runs read, history, replay, status and resync", async () => {
    const { service } = setup();
    const read = await service.execute(
      "read",
      { id: "r", device: "lamp-1" },
      { who: "hypervisor" },
    );
    expect(read).toEqual({
      id: "r",
      ok: true,
      result: {
        device: "lamp-1",
        readings: [{ point: "dim", ts: 1000, value: 42, unit: "%", quality: "good" }],
      },
    });
    for (const [name, body] of [
      ["history", { id: "h", from: 0, to: 10 }],
      ["replay", { id: "rp", from_seq: 3, to_seq: 9 }],
      ["status", { id: "s" }],
      ["resync", { id: "rs" }],
    ] as const) {
      const r = await service.execute(name, body, { who: "hypervisor" });
      expect(r.ok, name).toBe(true);
      expect(resultSchemas[name].safeParse(r.result).success, name).toBe(true);
    }
  });

  it("gives local commands an id when the CLI sends none", async () => {
    const { service } = setup();
    const r = await service.execute(
      "write",
      { device: "lamp-1", point: "dim", value: 9 },
      { who: "local" },
    );
    expect(r).toMatchObject({ ok: true, id: expect.stringMatching(/^local-/) });
  });

  it("requires signatures from the hypervisor but not from the local technician", async () => {
    const keys = generateKeyPairSync("ed25519");
    const v = new SignatureVerifier({
      db: tmp.db,
      publicKey: keys.publicKey,
      gatewayId: "gw-1",
      maxSkewMs: 60_000,
    });
    const unsigned = { id: "x1", device: "lamp-1", point: "dim", value: 1 };
    const r = await ask("write", unsigned, {}, v);
    expect(r.payload).toMatchObject({ ok: false, error: { code: "CommandSignature", ecode: 507 } });
    expect(target.writes).toHaveLength(0);
    const req = {
      id: "x2",
      device: "lamp-1",
      point: "dim",
      value: 2,
      ts: Date.now(),
      nonce: "0123456789abcdef",
    };
    const good = {
      ...req,
      sig: sign(null, signingInput("gw-1", "write", req), keys.privateKey).toString("base64"),
    };
    sent = [];
    const { dispatcher, service } = setup(v);
    await dispatcher.handle(msg("write", good));
    expect(sent[0]!.payload).toMatchObject({ id: "x2", ok: true });
    expect(
      (
        await service.execute(
          "write",
          { id: "x3", device: "lamp-1", point: "dim", value: 3 },
          { who: "local" },
        )
      ).ok,
    ).toBe(true);
    expect(target.writes.map((w) => w.value)).toEqual([2, 3]);
  });
});
