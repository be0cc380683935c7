import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { loadConfigFile, parseConfigText } from "../../config/load.js";

const base = `
version: 1
gateway: { id: gw-1 }
uplink: { url: "mqtt://127.0.0.1:1883" }
`;

function parse(text: string, env: Record<string, string> = {}, baseDir = "/nonexistent") {
  return parseConfigText(text, "test.yaml", { env, baseDir });
}

function problems(text: string, env: Record<string, string> = {}, baseDir = "/nonexistent") {
  try {
    parse(text, env, baseDir);
  } catch (e) {
    expect(e).toBeInstanceOf(EdgeError);
    expect((e as EdgeError).code).toBe(ErrorCode.ConfigInvalid);
    expect((e as EdgeError).exitCode).toBe(2);
    return (e as EdgeError).details!.problems as { path: string; message: string }[];
  }
  throw new Error("expected the config to be refused");
}

describe("config loader", () => {
  it("applies the documented defaults", () => {
    const c = parse(base);
    expect(c.state_dir).toBe("/var/lib/eclor-edge");
    expect(c.log.level).toBe("info");
    expect(c.uplink.prefix).toBe("eclor/v1");
    expect(c.uplink.protocol_version).toBe(5);
    expect(c.store.flush_ms).toBe(200);
    expect(c.store.history_days).toBe(30);
    expect(c.control.socket).toBe("/run/eclor-edge/control.sock");
    expect(c.drivers).toEqual([]);
  });

  it("validates every shipped example", () => {
    const dir = new URL("../../config/examples/", import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      // Examples reference secrets through env vars with defaults; none must be required.
      expect(() => loadConfigFile(new URL(f, dir).pathname, { env: {} }), f).not.toThrow();
    }
  });

  it("resolves ${ENV} references, defaults and the $${ escape", () => {
    const c = parse(
      `${base.replace("gw-1", '"${GW}"')}\nuplink: { url: "mqtt://\${HOST:-localhost}:1883", username: "\${USER_X}", password: "a$\${b}" }`.replace(
        /uplink: \{ url: "mqtt:\/\/127.0.0.1:1883" \}\n/,
        "",
      ),
      { GW: "from-env", USER_X: "alice" },
    );
    expect(c.gateway.id).toBe("from-env");
    expect(c.uplink.url).toBe("mqtt://localhost:1883");
    expect(c.uplink.username).toBe("alice");
    expect(c.uplink.password).toBe("a${b}");
  });

  it("reports an unset environment variable with its path and the fix", () => {
    const p = problems(
      `${base}\n`.replace(
        'url: "mqtt://127.0.0.1:1883"',
        'url: "mqtt://127.0.0.1:1883", password: "${NOPE}"',
      ),
    );
    expect(p).toEqual([
      {
        path: "uplink.password",
        message: expect.stringMatching(/environment variable NOPE is not set/),
      },
    ]);
  });

  it("resolves file: references relative to the config file, without the trailing newline", () => {
    const dir = mkdtempSync(join(tmpdir(), "eclor-cfg-"));
    writeFileSync(join(dir, "secret"), "s3cret\n");
    writeFileSync(join(dir, "abs"), "abs-secret");
    writeFileSync(
      join(dir, "c.yaml"),
      base.replace(
        'url: "mqtt://127.0.0.1:1883"',
        `url: "mqtt://127.0.0.1:1883", username: "file:${join(dir, "abs")}", password: "file:secret"`,
      ),
    );
    const c = loadConfigFile(join(dir, "c.yaml"), { env: {} });
    expect(c.uplink.password).toBe("s3cret");
    expect(c.uplink.username).toBe("abs-secret");
  });

  it("reports a missing file: reference", () => {
    const p = problems(
      base.replace(
        'url: "mqtt://127.0.0.1:1883"',
        'url: "mqtt://127.0.0.1:1883", password: "file:/no/such/secret"',
      ),
    );
    expect(p).toEqual([
      {
        path: "uplink.password",
        message: expect.stringMatching(/\/no\/such\/secret does not exist/),
      },
    ]);
  });

  it("never echoes a value from a reference or a secret field, and cuts long ones (issue 14.1)", () => {
    const ps = problems(
      `${base}gateway: { id: gw-1, name: 12 }
store: { flush_ms: "\${FLUSH}" }
drivers:
  - id: lora
    driver: lorawan
    devices:
      - id: s1
        dev_eui: "0011223344556677"
        codec: raw
        activation: { type: otaa, join_eui: "0011223344556677", app_key: "not-a-key-but-secret" }
`.replace("gateway: { id: gw-1 }\n", ""),
      { FLUSH: "secret-from-env" },
    );
    const text = JSON.stringify(ps);
    expect(text).not.toContain("secret-from-env");
    expect(text).not.toContain("not-a-key-but-secret");
    expect(text).toMatch(/not shown: secret or reference/);
    const long = problems(`${base}state_dir: 5\nlog: { level: "${"y".repeat(3000)}" }\n`);
    expect(JSON.stringify(long)).not.toContain("y".repeat(100));
    expect(JSON.stringify(long)).toMatch(/3000 characters/);
  });

  it("reports every problem at once, each with its path and expected form", () => {
    const p = problems(`
version: 1
gateway: { id: "bad/id", location: { lat: 120, lon: 6 } }
uplink: { url: "http://x", prefx: eclor/v1 }
store: { flush_ms: "200" }
drivers:
  - id: bus1
    driver: modbus
    transport: { type: tcp, host: 127.0.0.1 }
    devices:
      - id: m1
        unit_id: 1
        points:
          - { id: p1, table: holding, address: "4x0001" }
`);
    const byPath = Object.fromEntries(p.map((x) => [x.path, x.message]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        "gateway.id",
        "gateway.location.lat",
        "uplink.url",
        "uplink.prefx",
        "store.flush_ms",
        "drivers[0].devices[0].points[0].address",
      ].sort(),
    );
    expect(byPath["drivers[0].devices[0].points[0].address"]).toMatch(
      /^expected integer 0\.\.65535.*got "4x0001"$/,
    );
    expect(byPath["uplink.prefx"]).toBe('unknown key — did you mean "prefix"?');
    expect(byPath["gateway.location.lat"]).toMatch(/-90\.\.90, got 120/);
    expect(byPath["store.flush_ms"]).toMatch(/got "200"/);
  });

  it("names the accepted driver kinds when the discriminator is wrong", () => {
    const p = problems(`${base}drivers:\n  - { id: b, driver: modbuss }\n`);
    expect(p[0]!.path).toBe("drivers[0].driver");
    expect(p[0]!.message).toMatch(/^expected one of modbus.*got "modbuss"$/);
  });

  it("lists the allowed keys when an unknown key has no close match", () => {
    const p = problems(`${base}log: { level: info, zzzzzzzz: 1 }\n`);
    expect(p).toEqual([{ path: "log.zzzzzzzz", message: "unknown key (allowed here: level)" }]);
  });

  it("refuses a missing required section", () => {
    const p = problems("version: 1\ngateway: { id: a }\n");
    expect(p).toEqual([{ path: "uplink", message: expect.stringMatching(/^missing/) }]);
  });

  it("refuses duplicate driver and device ids", () => {
    const dev = "{ type: tcp, host: h }";
    const p = problems(`${base}drivers:
  - { id: b, driver: modbus, transport: ${dev}, devices: [{ id: d, unit_id: 1 }] }
  - { id: b, driver: modbus, transport: ${dev}, devices: [{ id: d, unit_id: 2 }] }
`);
    expect(p.map((x) => x.path).sort()).toEqual(["drivers[1].devices[0].id", "drivers[1].id"]);
  });

  it("reports YAML syntax errors with line and column", () => {
    const p = problems("version: 1\ngateway: { id: a\n");
    expect(p[0]!.path).toMatch(/^line \d+, column \d+$/);
  });

  it("refuses a duplicated key in YAML instead of keeping the last one", () => {
    const p = problems(`${base}version: 1\n`);
    expect(p[0]!.message).toMatch(/unique/i);
  });

  it("reports an unreadable config file with the fix", () => {
    try {
      loadConfigFile("/no/such/config.yaml");
      throw new Error("expected a failure");
    } catch (e) {
      expect((e as EdgeError).code).toBe(ErrorCode.ConfigUnreadable);
      expect((e as EdgeError).message).toMatch(/does not exist — pass --config FILE/);
    }
  });

  it("parses durations with units and refuses bare numbers", () => {
    const ok = parse(
      `${base}drivers:\n  - { id: b, driver: modbus, poll_interval: 1.5s, transport: { type: tcp, host: h } }\n`,
    );
    const d0 = ok.drivers[0]!;
    expect(d0.driver === "modbus" ? d0.poll_interval : undefined).toBe(1500);
    const p = problems(
      `${base}drivers:\n  - { id: b, driver: modbus, poll_interval: 10, transport: { type: tcp, host: h } }\n`,
    );
    expect(p[0]!.path).toBe("drivers[0].poll_interval");
    expect(p[0]!.message).toMatch(/duration with a unit/);
  });
});
