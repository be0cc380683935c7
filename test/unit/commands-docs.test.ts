/**
 * The commands section of the MQTT docs is exact: every `cmd-example` of docs/mqtt-api.md §8
 * validates against the schemas the command service uses, the signed example verifies with the
 * RFC 8032 test key, the audit event shown is what the code emits, and docs/asyncapi.yaml
 * carries the code's schemas (z.toJSONSchema) and the same examples.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { AuditLog } from "../../agent/commands/audit.js";
import {
  COMMAND_NAMES,
  commandDocSchemas,
  requestSchemas,
  responseSchema,
  resultSchemas,
} from "../../agent/commands/schemas.js";
import { parsePublicKey } from "../../config/ed25519.js";
import { SignatureVerifier } from "../../agent/commands/signing.js";
import type { DriverEvent } from "../../drivers/driver.js";
import { TempDb } from "./commands-helpers.js";

const root = resolve(import.meta.dirname, "../..");
const md = readFileSync(resolve(root, "docs/mqtt-api.md"), "utf8");
const asyncapi = parse(readFileSync(resolve(root, "docs/asyncapi.yaml"), "utf8")) as {
  channels: Record<string, { messages: Record<string, { $ref: string }> }>;
  components: {
    messages: Record<string, { payload: unknown; examples?: { name: string; payload: unknown }[] }>;
    schemas: Record<string, unknown>;
  };
};
const examples = [
  ...md.matchAll(/<!-- cmd-example: (\w+)(?: (\w+))? -->\s*```json\n([\s\S]*?)```/g),
].map((m) => ({
  name: m[1]!,
  tag: m[2],
  payload: JSON.parse(m[3]!) as Record<string, unknown>,
}));
const camel = (n: string) => n.replace(/\/(\w)/g, (_m, c: string) => c.toUpperCase());
// RFC 8032 §7.1 TEST 1 public key.
const RFC8032_TEST1 = Buffer.from(
  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  "hex",
).toString("base64");

describe("docs/mqtt-api.md §8 (commands)", () => {
  it("shows requests and responses of the main commands", () => {
    const names = new Set(examples.map((e) => e.name));
    for (const n of [
      "writeRequest",
      "writeResponse",
      "readRequest",
      "historyRequest",
      "historyResponse",
      "replayRequest",
      "replayResponse",
      "configSetRequest",
      "configSetResponse",
      "configGetResponse",
      "pingResponse",
    ]) {
      expect(names, n).toContain(n);
    }
  });

  it.each(examples.map((e, i) => [`${i}: ${e.name}${e.tag ? ` ${e.tag}` : ""}`, e] as const))(
    "example %s is valid",
    (_l, e) => {
      const schema = commandDocSchemas[e.name];
      expect(schema, `no schema for ${e.name}`).toBeDefined();
      const r = schema!.safeParse(e.payload);
      expect(r.success ? [] : r.error.issues).toEqual([]);
    },
  );

  it("the signed example verifies with the RFC 8032 test key", () => {
    const signed = examples.find((e) => e.tag === "signed")!;
    const tmp = new TempDb();
    try {
      const v = new SignatureVerifier({
        db: tmp.db,
        publicKey: parsePublicKey(RFC8032_TEST1),
        gatewayId: "volmerange-mairie",
        maxSkewMs: 300_000,
        now: () => signed.payload.ts as number,
      });
      expect(() => v.check("write", signed.payload)).not.toThrow();
      expect(() =>
        v.check("write", { ...signed.payload, value: 41, nonce: "another-nonce-123" }),
      ).toThrow(/bad signature/);
    } finally {
      tmp.dispose();
    }
  });

  it("the audit event shown is the one the code emits", () => {
    const shown = [...md.matchAll(/<!-- example: events -->\s*```json\n([\s\S]*?)```/g)]
      .map((m) => (JSON.parse(m[1]!) as { records: Record<string, unknown>[] }).records[0]!)
      .find((r) => r.type === "command_audit")!;
    const tmp = new TempDb();
    try {
      const emitted: DriverEvent[] = [];
      const msg = '120 is above the maximum 100 of "dali-mairie/lamp2_level" — nothing was written';
      new AuditLog(tmp.db, (e) => emitted.push(e)).record({
        ts: 1795632000120,
        who: "hypervisor",
        commandId: "7f3a9c1e-dim-43",
        command: "write",
        device: "dali-mairie",
        point: "lamp2_level",
        value: 120,
        outcome: "refused",
        code: "CommandRefused",
        message: msg,
      });
      const e = emitted[0]!;
      expect({
        type: e.type,
        severity: e.severity,
        device: e.device,
        message: e.message,
        data: e.data,
      }).toEqual({
        type: shown.type,
        severity: shown.severity,
        device: shown.device,
        message: shown.message,
        data: shown.data,
      });
    } finally {
      tmp.dispose();
    }
  });
});

describe("docs/asyncapi.yaml commands", () => {
  const js = (s: z.ZodType) =>
    JSON.parse(
      JSON.stringify(
        z.toJSONSchema(s, { io: "input", unrepresentable: "any", target: "draft-2020-12" }),
        (k, v: unknown) =>
          k === "$schema" ||
          ((k === "minimum" || k === "maximum") &&
            Math.abs(v as number) === Number.MAX_SAFE_INTEGER)
            ? undefined
            : v,
      ),
    ) as unknown;

  it.each(COMMAND_NAMES)("%s: request and result schemas are the code's", (n) => {
    expect(asyncapi.components.schemas[`${camel(n)}Request`]).toEqual(js(requestSchemas[n]));
    expect(asyncapi.components.schemas[`${camel(n)}Result`]).toEqual(js(resultSchemas[n]));
  });

  it("the response frame is the code's", () => {
    expect(asyncapi.components.schemas.commandResponseFull).toEqual(js(responseSchema));
  });

  it("every command has its messages on the command channels, with the examples of the markdown", () => {
    for (const n of COMMAND_NAMES) {
      expect(asyncapi.channels.commandRequest!.messages[`${camel(n)}Request`]?.$ref).toBe(
        `#/components/messages/${camel(n)}Request`,
      );
      expect(asyncapi.channels.commandResponse!.messages[`${camel(n)}Response`]?.$ref).toBe(
        `#/components/messages/${camel(n)}Response`,
      );
    }
    const inYaml = Object.entries(asyncapi.components.messages).flatMap(([name, m]) =>
      (m.examples ?? []).map((e) => JSON.stringify([name, e.payload])),
    );
    for (const e of examples) expect(inYaml).toContain(JSON.stringify([e.name, e.payload]));
  });
});
