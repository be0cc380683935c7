/**
 * The whole installer path, for real:
 *  1. the Dockerfile's build-stage install step, run verbatim in a copy of the Docker build
 *     context (npm pack → unpack → production-only `npm ci` into an empty directory, native
 *     modules compiled): `eclor-edge --version` and `config validate` from there;
 *  2. `npm run package:deb` on that tree (reused so the native modules compile once);
 *  3. install, upgrade to a rebuilt package, remove, reinstall and purge in a Debian 13 (trixie)
 *     root made by debootstrap, checking state and configuration survive what they must.
 * Slow by nature (compiling SQLite, downloading Debian): a few minutes, all in one temp dir that
 * is removed at the end; nothing is mounted into the Debian root.
 */
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildStageInstallStep, repoRoot } from "./packaging-dockerfile.js";

const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  version: string;
};
const arch = spawnSync("dpkg", ["--print-architecture"], { encoding: "utf8" }).stdout.trim();
const tmp = mkdtempSync(join(tmpdir(), "eclor-pkg-"));
const prefix = join(tmp, "install"); // the Dockerfile's $PREFIX
const root = join(tmp, "trixie");
const debName = `eclor-edge_${pkg.version}_${arch}.deb`;
const MIN = 60_000;

/** A clean environment for Debian tools: nothing of this test runner leaks into the chroot. */
const debianEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
  DEBIAN_FRONTEND: "noninteractive",
};

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** A shell command inside the Debian root. */
const inRoot = (script: string) =>
  run("chroot", [root, "/bin/sh", "-ec", script], { env: debianEnv });
const okInRoot = (script: string) =>
  ok("chroot", [root, "/bin/sh", "-ec", script], { env: debianEnv });

/**
 * The Docker build context: the repository minus .dockerignore, copied to the temp dir. Building
 * there, like `COPY . .` does, also keeps this test from rewriting the repository's dist/ while
 * other test files run it. The stage's `npm ci --ignore-scripts` (build tools) is the repository's
 * own node_modules, linked in.
 */
function dockerContext(): string {
  const patterns = readFileSync(join(repoRoot, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const ignored = (rel: string): boolean =>
    patterns.some((p) => {
      if (p.startsWith("**/*") || p.startsWith("*"))
        return rel.endsWith(p.replace(/^\*\*\/\*|^\*/, ""));
      return rel === p || rel.startsWith(`${p}/`);
    });
  const ctx = join(tmp, "context");
  cpSync(repoRoot, ctx, {
    recursive: true,
    filter: (src) => !ignored(relative(repoRoot, src)),
  });
  symlinkSync(join(repoRoot, "node_modules"), join(ctx, "node_modules"));
  return ctx;
}

async function dockerfileInstallStep(): Promise<void> {
  const step = buildStageInstallStep();
  await ok("/bin/sh", ["-ec", step.command], {
    cwd: dockerContext(),
    env: { ...process.env, ...step.env, PREFIX: prefix },
  });
}

async function debianRoot(): Promise<void> {
  await ok("debootstrap", ["--variant=minbase", "trixie", root, "http://deb.debian.org/debian"], {
    env: debianEnv,
  });
  // Debian's own Node (20.19 in trixie) and systemd (to verify the unit with Debian 13's systemd
  // and to let postinst enable it offline, as in an image build).
  await okInRoot(
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs systemd ca-certificates",
  );
}

beforeAll(async () => {
  // Independent and slow (compiling vs downloading): side by side.
  // allSettled: on a failure, wait for the other one too, so afterAll never deletes a folder
  // that debootstrap or npm is still writing to.
  const results = await Promise.allSettled([dockerfileInstallStep(), debianRoot()]);
  for (const r of results) if (r.status === "rejected") throw r.reason;
}, 20 * MIN);

afterAll(() => {
  // Nothing was mounted inside the root, so removing the folder is safe and complete.
  rmSync(tmp, { recursive: true, force: true });
});

describe("npm pack → production install (the Dockerfile build stage)", () => {
  const bin = join(prefix, "dist/agent/main.js");

  it("contains the compiled agent and production dependencies only", () => {
    expect(existsSync(join(prefix, "package.json"))).toBe(true);
    expect(statSync(bin).mode & 0o111).not.toBe(0);
    for (const dep of ["better-sqlite3", "mqtt", "serialport", "pino"]) {
      expect(existsSync(join(prefix, "node_modules", dep)), dep).toBe(true);
    }
    for (const dev of ["typescript", "vitest", "eslint", "prettier", "aedes", "dockerfile-utils"]) {
      expect(existsSync(join(prefix, "node_modules", dev)), dev).toBe(false);
    }
    expect(existsSync(join(prefix, "test"))).toBe(false);
  });

  it("eclor-edge --version and config validate work from there", async () => {
    const v = await ok(bin, ["--version"], { cwd: prefix });
    expect(v.stdout.trim()).toBe(pkg.version);
    const example = join(prefix, "config/examples/minimal.yaml");
    const good = await run(bin, ["config", "validate", example], { cwd: prefix });
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    const broken = join(tmp, "broken.yaml");
    writeFileSync(broken, "version: 1\ngateway: { id: gw }\nuplink: { url: 'ftp://x' }\n");
    const bad = await run(bin, ["config", "validate", broken], { cwd: prefix });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/uplink\.url/);
  });

  it("the native modules load there: SQLite works, the sd-notify helper is built", async () => {
    const script = `
      const db = require("better-sqlite3")(${JSON.stringify(join(tmp, "t.db"))});
      db.exec("create table t (v integer)"); db.prepare("insert into t values (?)").run(42);
      if (db.prepare("select v from t").get().v !== 42) process.exit(1);
      require("sd-notify");
      console.log("native ok");`;
    const r = await ok(process.execPath, ["-e", script], { cwd: prefix });
    expect(r.stdout.trim()).toBe("native ok");
  });
});

describe("Debian package in a Debian 13 root", () => {
  it(
    "npm run package:deb builds eclor-edge_<version>_<arch>.deb",
    async () => {
      const r = await ok(
        "npm",
        ["run", "--silent", "package:deb", "--", "--out", tmp, "--from", prefix],
        {
          cwd: repoRoot,
        },
      );
      expect(r.stdout.trim()).toBe(join(tmp, debName));
      const info = await ok("dpkg-deb", ["-f", join(tmp, debName)]);
      expect(info.stdout).toMatch(
        new RegExp(`^Version: ${pkg.version.replaceAll(".", "\\.")}$`, "m"),
      );
      expect(info.stdout).toMatch(new RegExp(`^Architecture: ${arch}$`, "m"));
      expect(info.stdout).toMatch(/^Depends: nodejs \(>= 20\.19\), nodejs \(<< 21\),/m);
      const ctl = await ok("dpkg-deb", ["--ctrl-tarfile", join(tmp, debName)]);
      expect(ctl.code).toBe(0);
    },
    10 * MIN,
  );

  it(
    "installs: user in dialout, state dir, config validated, service not started on the example",
    async () => {
      copyFileSync(join(tmp, debName), join(root, "tmp", debName));
      const r = await okInRoot(`apt-get install -y -q --no-install-recommends /tmp/${debName}`);
      expect(r.stdout).toMatch(/still the example shipped by the package; the service is NOT/);

      const v = await okInRoot("eclor-edge --version");
      expect(v.stdout.trim()).toBe(pkg.version);
      const val = await inRoot("eclor-edge config validate");
      expect(val.code).toBe(0);
      expect(val.stdout).toMatch(/ok \/etc\/eclor-edge\/config\.yaml/);
      expect(readlinkSync(join(root, "usr/bin/eclor-edge"))).toBe(
        "../lib/eclor-edge/dist/agent/main.js",
      );

      const id = await okInRoot("id -nG eclor-edge; getent passwd eclor-edge");
      expect(id.stdout.split("\n")[0]!.split(" ")).toEqual(["eclor-edge", "dialout"]);
      expect(id.stdout).toMatch(/:\/var\/lib\/eclor-edge:\/usr\/sbin\/nologin$/m);
      const st = await okInRoot(
        "stat -c '%n %U:%G %a' /var/lib/eclor-edge /etc/eclor-edge /etc/eclor-edge/config.yaml",
      );
      expect(st.stdout.trim().split("\n")).toEqual([
        "/var/lib/eclor-edge eclor-edge:eclor-edge 750",
        "/etc/eclor-edge root:eclor-edge 750",
        "/etc/eclor-edge/config.yaml root:eclor-edge 640",
      ]);
      const en = await inRoot("systemctl is-enabled eclor-edge.service");
      expect(en.stdout.trim()).toBe("disabled");
    },
    10 * MIN,
  );

  it("Debian 13's systemd accepts the installed unit (verify, nothing on stderr)", async () => {
    const r = await inRoot("systemd-analyze verify /usr/lib/systemd/system/eclor-edge.service");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it(
    "an upgrade to a rebuilt package keeps /var/lib/eclor-edge and the edited config",
    async () => {
      // The site's configuration and a store, as on a gateway in service.
      await okInRoot(
        "sed -i 's/id: example-gateway/id: volmerange-mairie/' /etc/eclor-edge/config.yaml;" +
          "printf 'readings' > /var/lib/eclor-edge/store.db; chown eclor-edge: /var/lib/eclor-edge/store.db",
      );
      const v2 = join(tmp, "v2");
      await ok("dpkg-deb", ["-R", join(tmp, debName), v2]);
      const control = join(v2, "DEBIAN/control");
      writeFileSync(
        control,
        readFileSync(control, "utf8").replace(/^Version: .*$/m, `Version: ${pkg.version}+rebuild1`),
      );
      writeFileSync(join(v2, "usr/lib/eclor-edge/REBUILT"), "1\n");
      await ok("dpkg-deb", ["--root-owner-group", "-Zgzip", "-b", v2, join(root, "tmp/v2.deb")]);

      const r = await okInRoot("dpkg -i /tmp/v2.deb");
      expect(r.stdout).toMatch(/config\.yaml is valid\./);
      const q = await okInRoot("dpkg-query -W -f='${Version}' eclor-edge");
      expect(q.stdout).toBe(`${pkg.version}+rebuild1`);
      expect(existsSync(join(root, "usr/lib/eclor-edge/REBUILT"))).toBe(true);
      expect(readFileSync(join(root, "var/lib/eclor-edge/store.db"), "utf8")).toBe("readings");
      expect(readFileSync(join(root, "etc/eclor-edge/config.yaml"), "utf8")).toMatch(
        /id: volmerange-mairie/,
      );
      // An upgrade does not change whether the service is enabled.
      expect((await inRoot("systemctl is-enabled eclor-edge.service")).stdout.trim()).toBe(
        "disabled",
      );
    },
    10 * MIN,
  );

  it(
    "remove keeps data and config; a reinstall with a valid config enables the service",
    async () => {
      await okInRoot("apt-get remove -y -q eclor-edge");
      expect(existsSync(join(root, "usr/lib/eclor-edge"))).toBe(false);
      expect(() => lstatSync(join(root, "usr/bin/eclor-edge"))).toThrow();
      expect(readFileSync(join(root, "var/lib/eclor-edge/store.db"), "utf8")).toBe("readings");
      expect(existsSync(join(root, "etc/eclor-edge/config.yaml"))).toBe(true);

      const r = await okInRoot("dpkg -i /tmp/v2.deb");
      expect(r.stdout).toMatch(/config\.yaml is valid\./);
      expect((await inRoot("systemctl is-enabled eclor-edge.service")).stdout.trim()).toBe(
        "enabled",
      );
    },
    10 * MIN,
  );

  it(
    "purge removes the state, the configuration and the enablement",
    async () => {
      await okInRoot("dpkg --purge eclor-edge");
      expect(existsSync(join(root, "var/lib/eclor-edge"))).toBe(false);
      expect(existsSync(join(root, "etc/eclor-edge"))).toBe(false);
      expect(
        existsSync(join(root, "etc/systemd/system/multi-user.target.wants/eclor-edge.service")),
      ).toBe(false);
      const q = await inRoot("dpkg-query -W -f='${Status}' eclor-edge");
      expect(q.code).not.toBe(0);
    },
    10 * MIN,
  );
});
