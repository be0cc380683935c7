/** The enrolment messages: the documented schemas (docs/asyncapi.yaml) are the code's. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { describe, expect, it } from "vitest";
import { enrollTopics, requestSchema, responseSchema } from "../../agent/provision/protocol.js";

const root = resolve(import.meta.dirname, "../..");
const asyncapi = parse(readFileSync(resolve(root, "docs/asyncapi.yaml"), "utf8")) as {
  channels: Record<string, { address: string }>;
  components: { schemas: Record<string, unknown> };
};

function jsonSchema(s: z.ZodType): unknown {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s) as Record<string, unknown>;
  return rest;
}

describe("enrolment protocol", () => {
  it("docs/asyncapi.yaml documents exactly the code's request and response schemas", () => {
    expect(asyncapi.components.schemas.enrollRequestPayload).toEqual(jsonSchema(requestSchema));
    expect(asyncapi.components.schemas.enrollResponsePayload).toEqual(jsonSchema(responseSchema));
    const t = enrollTopics("{prefix}", "{gatewayId}");
    expect(asyncapi.channels.enrollRequest!.address).toBe(t.request);
    expect(asyncapi.channels.enrollResponse!.address).toBe(t.response);
  });

  it("refuses unknown keys, wrong versions and unknown refusal codes", () => {
    const base = { v: 1, gateway: "gw-1", request_id: "req-00000001" };
    expect(
      requestSchema.safeParse({ ...base, type: "enrol", csr: "x", token: "t".repeat(16) }).success,
    ).toBe(true);
    expect(
      requestSchema.safeParse({ ...base, type: "enrol", csr: "x", token: "t".repeat(16), extra: 1 })
        .success,
    ).toBe(false);
    expect(
      requestSchema.safeParse({ ...base, v: 2, type: "enrol", csr: "x", token: "t".repeat(16) })
        .success,
    ).toBe(false);
    expect(
      responseSchema.safeParse({ ...base, ok: false, error: { code: "nope", message: "" } })
        .success,
    ).toBe(false);
    expect(responseSchema.safeParse({ ...base, ok: true }).success).toBe(false);
  });
});
