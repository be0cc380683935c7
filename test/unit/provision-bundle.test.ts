/** The provisioning bundle is validated like the main config: every problem, with path and fix. */
import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bundleToYaml,
  loadBundleFile,
  parseBundleText,
  validateBundle,
  withoutToken,
} from "../../agent/provision/bundle.js";
import { matchStateDirOwner, writeFileAtomic } from "../../agent/provision/files.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";

let dir: string;
let caPem: string;
let leafPem: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "eclor-bundle-"));
  const o = (args: string[]) =>
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  o([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
  ]);
  o([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "leaf.key",
    "-out",
    "leaf.pem",
    "-days",
    "1",
    "-subj",
    "/CN=leaf",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
  ]);
  caPem = readFileSync(join(dir, "ca.pem"), "utf8");
  leafPem = readFileSync(join(dir, "leaf.pem"), "utf8");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = () => ({
  version: 1,
  gateway: {
    id: "gw-thionville-03",
    commune: "57672",
    name: "Mairie",
    location: { lat: 49.35, lon: 6.16 },
  },
  platform: {
    url: "mqtts://platform.example.org:8883",
    enrolment_url: "mqtts://platform.example.org:8884",
    ca: caPem,
  },
  enrolment: {
    token: "tok_0123456789abcdef",
    expires: "2030-01-01T00:00:00Z",
    username: "enrol",
    password: "pw",
  },
});

function problems(raw: unknown): { path: string; message: string }[] {
  try {
    validateBundle(raw, "bundle.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(EdgeError);
    expect((e as EdgeError).code).toBe(ErrorCode.ProvisionBundle);
    expect((e as EdgeError).exitCode).toBe(2);
    return (e as EdgeError).details!.problems as { path: string; message: string }[];
  }
  throw new Error("expected the bundle to be refused");
}

describe("provisioning bundle", () => {
  it("accepts a complete bundle and applies defaults", () => {
    const b = validateBundle(good(), "bundle.yaml");
    expect(b.platform.prefix).toBe("eclor/v1");
    expect(b.gateway.id).toBe("gw-thionville-03");
  });

  it("reports every problem at once, each with its path and the fix", () => {
    const raw = good() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test mutates freely
    raw.gateway.id = "gw/03";
    raw.platform.url = "mqtt://platform:1883";
    raw.platform.ca = leafPem;
    raw.enrolment.expires = "tomorrow";
    raw.enrolment.tokne = "x";
    const p = problems(raw);
    const byPath = Object.fromEntries(p.map((x) => [x.path, x.message]));
    expect(Object.keys(byPath).sort()).toEqual([
      "enrolment.expires",
      "enrolment.tokne",
      "gateway.id",
      "platform.ca",
      "platform.url",
    ]);
    expect(byPath["gateway.id"]).toMatch(/no '\/'/);
    expect(byPath["platform.url"]).toMatch(/plain mqtt:\/\/ is refused/);
    expect(byPath["platform.ca"]).toMatch(/is not a CA certificate.*put the platform CA here/);
    expect(byPath["enrolment.expires"]).toMatch(/ISO 8601 date-time with a zone/);
    expect(byPath["enrolment.tokne"]).toMatch(/did you mean "token"/);
  });

  it("refuses missing sections, garbage CA text and reserved ids", () => {
    const p = problems({
      version: 1,
      gateway: { id: "platform", commune: "x" },
      platform: { url: "mqtts://h:1", ca: "hello" },
    });
    const paths = p.map((x) => x.path);
    expect(paths).toContain("enrolment");
    expect(p.find((x) => x.path === "gateway.id")?.message).toMatch(/reserved by the platform/);
    expect(p.find((x) => x.path === "platform.ca")?.message).toMatch(/PEM/);
  });

  it("reports YAML syntax errors with line and column, and unreadable files clearly", () => {
    expect(() => parseBundleText("version: 1\ngateway: [\n", "b.yaml")).toThrow(
      /b\.yaml: 1 problem\n {2}line \d+, column \d+/,
    );
    expect(() => loadBundleFile(join(dir, "missing.yaml"))).toThrow(
      /does not exist — copy the bundle/,
    );
  });

  it("round-trips through YAML and drops the token once used", () => {
    const b = validateBundle(good(), "x");
    const text = bundleToYaml(withoutToken(b));
    expect(text).not.toContain("tok_0123456789abcdef");
    const back = parseBundleText(text, "x");
    expect(back.enrolment.token).toBeUndefined();
    expect(back.platform.ca).toBe(caPem);
  });

  it("writes secrets atomically with mode 0600", () => {
    const f = join(dir, "sub", "secret.pem");
    writeFileAtomic(f, "secret", 0o600);
    writeFileAtomic(f, "secret2", 0o600);
    expect(readFileSync(f, "utf8")).toBe("secret2");
    expect(statSync(f).mode & 0o777).toBe(0o600);
    writeFileSync(join(dir, "plain"), "x");
  });

  // chown needs root; as another user the function is a no-op by design (nothing to hand over).
  it.runIf(process.getuid?.() === 0)(
    "run as root, hands the provisioning files to the state directory's owner",
    () => {
      const state = join(dir, "state");
      writeFileAtomic(join(state, "provision", "key.pem"), "k", 0o600);
      writeFileAtomic(join(state, "provision", "renew", "key.pem"), "k", 0o600);
      chownSync(state, 65534, 65534);
      matchStateDirOwner(state);
      for (const f of ["provision", "provision/key.pem", "provision/renew/key.pem"]) {
        expect(statSync(join(state, f)).uid).toBe(65534);
      }
      expect(statSync(join(state, "provision", "key.pem")).mode & 0o777).toBe(0o600);
    },
  );
});
