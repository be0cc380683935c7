/**
 * The MQTT contract's documentation is exact: every example in docs/mqtt-api.md and
 * docs/asyncapi.yaml validates against the schemas the code uses, the AsyncAPI property lists
 * match those schemas, and what the code renders validates too.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { z } from "zod";
import { commandDocSchemas } from "../../agent/commands/schemas.js";
import { batchPayload, eventRecord, readingRecord, withSeq } from "../../agent/store/records.js";
import {
  eventRecordSchema,
  gapDataSchema,
  inventoryPayloadSchema,
  payloadSchemas,
  statePayloadSchema,
  storeEpochDataSchema,
  telemetryPayloadSchema,
  telemetryRecordSchema,
} from "../../agent/uplink/payloads.js";

const root = resolve(import.meta.dirname, "../..");
const md = readFileSync(resolve(root, "docs/mqtt-api.md"), "utf8");
const asyncapi = parse(readFileSync(resolve(root, "docs/asyncapi.yaml"), "utf8")) as {
  asyncapi: string;
  components: {
    messages: Record<string, { examples?: { name: string; payload: unknown }[] }>;
    schemas: Record<string, { properties?: Record<string, unknown> }>;
  };
};
type Name = keyof typeof payloadSchemas;

function check(name: string, payload: unknown): string[] {
  // Command messages (writeRequest, writeResponse…) are defined by the command router.
  const schema = (payloadSchemas[name as Name] as z.ZodType | undefined) ?? commandDocSchemas[name];
  if (!schema) return [`no schema for example "${name}"`];
  const r = schema.safeParse(payload);
  return r.success ? [] : r.error.issues.map((i) => `${name}: ${i.path.join(".")}: ${i.message}`);
}

describe("docs/mqtt-api.md", () => {
  const examples = [...md.matchAll(/<!-- example: (\w+) -->\s*```json\n([\s\S]*?)```/g)].map(
    (m) => ({ name: m[1]!, json: m[2]! }),
  );

  it("has the examples of every message", () => {
    expect(new Set(examples.map((e) => e.name))).toEqual(
      new Set(["telemetry", "events", "state", "inventory", "response"]),
    );
  });

  it.each(examples.map((e, i) => [`${i}: ${e.name}`, e] as const))(
    "example %s is valid",
    (_label, e) => {
      expect(check(e.name, JSON.parse(e.json))).toEqual([]);
    },
  );

  it("gap examples carry valid gap data", () => {
    for (const e of examples.filter((x) => x.name === "events")) {
      for (const r of (JSON.parse(e.json) as { records: { type: string; data?: unknown }[] })
        .records) {
        if (r.type === "gap") expect(gapDataSchema.safeParse(r.data).success).toBe(true);
        if (r.type === "store_epoch")
          expect(storeEpochDataSchema.safeParse(r.data).success).toBe(true);
      }
    }
  });
});

describe("docs/asyncapi.yaml", () => {
  it("is AsyncAPI 3", () => {
    expect(asyncapi.asyncapi).toMatch(/^3\.0\./);
  });

  const all = Object.entries(asyncapi.components.messages).flatMap(([name, m]) =>
    (m.examples ?? []).map((ex) => [`${name}/${ex.name}`, name, ex.payload] as const),
  );
  it.each(all)("example %s is valid", (_label, name, payload) => {
    expect(check(name, payload)).toEqual([]);
  });

  it.each([
    ["telemetryRecord", telemetryRecordSchema],
    ["eventRecord", eventRecordSchema],
    ["statePayload", statePayloadSchema],
    ["inventoryPayload", inventoryPayloadSchema],
  ] as const)("%s lists exactly the fields of the code's schema", (name, schema) => {
    const documented = Object.keys(asyncapi.components.schemas[name]!.properties ?? {}).sort();
    expect(documented).toEqual(Object.keys(schema.shape).sort());
  });
});

const EPOCH = "0b6f1a52-9c8e-4d3a-a1f7-5e2c9d40b813";

describe("what the code renders", () => {
  it("telemetry records of every value type and quality are valid SenML+seq", () => {
    const ts = 1795630960843;
    const recs = [
      readingRecord({ device: "m", point: "p", ts, value: 1.5, unit: "kWh", quality: "good" }, 1),
      readingRecord({ device: "m", point: "b", ts, value: true, quality: "good" }, 1),
      readingRecord(
        {
          device: "m",
          point: "s",
          ts,
          value: "HP..",
          quality: "uncertain",
          detail: "clock degraded",
        },
        2,
      ),
      readingRecord(
        {
          device: "m",
          point: "x",
          ts,
          value: null,
          unit: "W",
          quality: "timeout",
          detail: "no answer",
        },
        1,
      ),
    ];
    const payload = JSON.parse(
      batchPayload(
        EPOCH,
        recs.map((r, i) => withSeq(i + 1, r.body)),
      ),
    ) as unknown;
    expect(telemetryPayloadSchema.parse(payload)).toEqual({
      epoch: EPOCH,
      records: [
        { seq: 1, n: "m/p", t: 1795630960.843, u: "kWh", v: 1.5 },
        { seq: 2, n: "m/b", t: 1795630960.843, vb: true },
        { seq: 3, n: "m/s", t: 1795630960.843, vs: "HP..", q: "uncertain", qd: "clock degraded" },
        { seq: 4, n: "m/x", t: 1795630960.843, u: "W", q: "timeout", qd: "no answer" },
      ],
    });
  });

  it("event records are valid", () => {
    const r = eventRecord({
      ts: 1795630960843,
      type: "device_offline",
      severity: "warning",
      device: "m",
      message: "gone",
      data: { errors: 3 },
    });
    expect(
      payloadSchemas.events.safeParse(JSON.parse(batchPayload(EPOCH, [withSeq(7, r.body)])))
        .success,
    ).toBe(true);
  });
});
