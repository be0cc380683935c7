import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configJsonSchema } from "../../agent/cli/config.js";

const root = new URL("../../", import.meta.url).pathname;
const cli = join(root, "dist/agent/main.js");

describe("config/schema.json", () => {
  it("is generated from config/schema.ts and not stale (regenerate with `npm run schema`)", () => {
    const checkedIn: unknown = JSON.parse(readFileSync(join(root, "config/schema.json"), "utf8"));
    expect(checkedIn, "config/schema.json is stale: run `npm run schema` and commit it").toEqual(
      JSON.parse(JSON.stringify(configJsonSchema())),
    );
  });

  it("forbids unknown keys so editors flag typos too", () => {
    const s = configJsonSchema() as {
      additionalProperties?: unknown;
      properties: Record<string, { additionalProperties?: unknown }>;
    };
    expect(s.additionalProperties).toBe(false);
    expect(s.properties.uplink!.additionalProperties).toBe(false);
  });
});

describe("eclor-edge config validate (CLI)", () => {
  it("exits 0 on the shipped examples", () => {
    const out = execFileSync(
      "node",
      [cli, "config", "validate", join(root, "config/examples/minimal.yaml")],
      { encoding: "utf8" },
    );
    expect(out).toMatch(/^ok .*minimal\.yaml: gateway volmerange-mairie/);
  });

  it("exits 2 and prints every problem with its path", () => {
    const dir = mkdtempSync(join(tmpdir(), "eclor-cli-"));
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      'version: 2\ngateway: { id: "a b" }\nuplink: { url: "mqtt://h", keepalive_s: 1, prefx: x }\nstore: { history_days: -1 }\n',
    );
    const r = spawnSync("node", [cli, "config", "validate", file], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("5 problems");
    for (const path of [
      "version:",
      "gateway.id:",
      "uplink.keepalive_s:",
      "uplink.prefx:",
      "store.history_days:",
    ]) {
      expect(r.stderr).toContain(`  ${path}`);
    }
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
  });

  it("--json gives the problems as data", () => {
    const r = spawnSync("node", [cli, "config", "validate", "--json", "/no/such.yaml"], {
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    const j = JSON.parse(r.stdout) as { ok: boolean; files: { ok: boolean }[] };
    expect(j.ok).toBe(false);
    expect(j.files[0]!.ok).toBe(false);
  });

  it("exits 2 on an unknown option", () => {
    const r = spawnSync("node", [cli, "config", "validate", "--nope"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option/);
  });
});
