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
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
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
import { waitFor } from "../helpers/ports.js";
import { BootedRoot, chrootShell, debianRoot, ok, run } from "./packaging-root.js";
import { SiteRig } from "./packaging-site.js";

const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  version: string;
};
const arch = spawnSync("dpkg", ["--print-architecture"], { encoding: "utf8" }).stdout.trim();
const tmp = mkdtempSync(join(tmpdir(), "eclor-pkg-"));
const prefix = join(tmp, "install"); // the Dockerfile's $PREFIX
const root = join(tmp, "trixie");
const debName = `eclor-edge_${pkg.version}_${arch}.deb`;
const MIN = 60_000;
const { inRoot, okInRoot } = chrootShell(root);

/** Files the code reads at run time besides dist/ (see drivers/modbus/profiles.ts, codecs.ts). */
function runtimeFiles(): string[] {
  const out = ["package.json", "config/schema.json"];
  for (const kind of readdirSync(join(repoRoot, "drivers"), { withFileTypes: true })) {
    if (!kind.isDirectory()) continue;
    for (const [sub, ext] of [
      ["profiles", ".yaml"],
      ["codecs", ".js"],
    ] as const) {
      const dir = join(repoRoot, "drivers", kind.name, sub);
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir))
        if (f.endsWith(ext)) out.push(`drivers/${kind.name}/${sub}/${f}`);
    }
  }
  return out;
}

/** Every shipped example (config/examples/NAME.yaml, drivers/KIND/sample.yaml), relative paths. */
function shippedExamples(): string[] {
  const ex = readdirSync(join(repoRoot, "config/examples"))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => `config/examples/${f}`);
  const samples = readdirSync(join(repoRoot, "drivers"))
    .map((k) => `drivers/${k}/sample.yaml`)
    .filter((f) => existsSync(join(repoRoot, f)));
  return [...ex, ...samples];
}

/**
 * `config validate` of every shipped example from an installed tree inside the Debian root,
 * with the secrets the samples reference provided as an installer would (environment, key file).
 */
async function validateExamples(tree: string) {
  const files = shippedExamples();
  const r = await inRoot(
    "mkdir -p /etc/eclor-edge/keys && echo 000102030405060708090a0b0c0d0e0f > /etc/eclor-edge/keys/mediatheque.key;" +
      `cd ${tree} && /usr/bin/node dist/agent/main.js config validate ${files.join(" ")} && rc=0 || rc=$?;` +
      "rm -rf /etc/eclor-edge/keys; exit $rc",
    {
      LORA_KEY_CO2_ECOLE: "2b7e151628aed2a6abf7158809cf4f3c",
      LORA_NWKSKEY_STADE: "2b7e151628aed2a6abf7158809cf4f3d",
      LORA_APPSKEY_STADE: "2b7e151628aed2a6abf7158809cf4f3e",
    },
  );
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  for (const f of files) expect(r.stdout).toMatch(new RegExp(`^ok ${f}: `, "m"));
  // The profiles and codecs were found: the demo's drivers and devices are all there.
  expect(r.stdout).toMatch(
    /^ok config\/examples\/demo\.yaml: gateway demo-mairie, 2 driver\(s\), 5 device\(s\)/m,
  );
}

/** A rebuilt package (same content, a higher version and a marker file), for upgrades. */
async function rebuilt(suffix: string): Promise<string> {
  const dir = join(tmp, suffix);
  await ok("dpkg-deb", ["-R", join(tmp, debName), dir]);
  const control = join(dir, "DEBIAN/control");
  writeFileSync(
    control,
    readFileSync(control, "utf8").replace(/^Version: .*$/m, `Version: ${pkg.version}+${suffix}`),
  );
  writeFileSync(join(dir, "usr/lib/eclor-edge/REBUILT"), `${suffix}\n`);
  const out = join(root, `var/tmp/${suffix}.deb`);
  await ok("dpkg-deb", ["--root-owner-group", "-Zgzip", "-b", dir, out]);
  return `/var/tmp/${suffix}.deb`;
}

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

beforeAll(async () => {
  // Independent and slow (compiling vs downloading): side by side.
  // allSettled: on a failure, wait for the other one too, so afterAll never deletes a folder
  // that debootstrap or npm is still writing to.
  // Debian's own Node (20.19 in trixie) and systemd (to verify the unit with Debian 13's systemd,
  // to let postinst enable it offline as in an image build, and to boot the root).
  const results = await Promise.allSettled([
    dockerfileInstallStep(),
    debianRoot(root, ["nodejs", "systemd", "systemd-sysv", "ca-certificates"]),
  ]);
  for (const r of results) if (r.status === "rejected") throw r.reason;
}, 20 * MIN);

let booted: BootedRoot | undefined;
let site: SiteRig | undefined;

afterAll(async () => {
  await booted?.stop();
  await site?.dispose();
  // Nothing was mounted inside the root (nspawn's mounts end with it), so removing is complete.
  rmSync(tmp, { recursive: true, force: true });
}, 2 * MIN);

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

  it("carries every file the code loads at run time (profiles, codecs, examples, samples)", () => {
    const files = [...runtimeFiles(), ...shippedExamples()];
    expect(files.filter((f) => f.includes("/profiles/")).length).toBeGreaterThan(0);
    expect(files.filter((f) => f.includes("/codecs/")).length).toBeGreaterThan(0);
    const missing = files.filter((f) => !existsSync(join(prefix, f)));
    expect(missing, "missing from the installed tree").toEqual([]);
    for (const f of files) {
      expect(readFileSync(join(prefix, f), "utf8"), f).toBe(
        readFileSync(join(repoRoot, f), "utf8"),
      );
    }
  });

  it("node_modules without docs, TypeScript or source maps; native modules stripped", async () => {
    const r = await ok("find", [
      join(prefix, "node_modules"),
      "-type",
      "f",
      "(",
      "-name",
      "*.md",
      "-o",
      "-name",
      "*.ts",
      "-o",
      "-name",
      "*.map",
      ")",
      "!",
      "-iname",
      "licen[cs]e*",
    ]);
    expect(r.stdout.trim()).toBe("");
    const natives = (await ok("find", [join(prefix, "node_modules"), "-name", "*.node"])).stdout
      .split("\n")
      .filter(Boolean);
    expect(natives.length).toBeGreaterThanOrEqual(3); // better-sqlite3, serialport, sd-notify
    for (const f of natives) {
      const elf = await ok("readelf", ["-h", "-S", "-W", f]);
      expect(elf.stdout, `${f}: unstripped`).not.toMatch(/\.symtab/);
      expect(elf.stdout, `${f}: another machine's binary`).toMatch(
        arch === "amd64" ? /Machine:\s+Advanced Micro Devices X86-64/ : /Machine:/,
      );
    }
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

  it("every shipped example validates with the image's tree on Debian 13's node", async () => {
    cpSync(prefix, join(root, "opt/eclor-edge-image"), { recursive: true });
    await validateExamples("/opt/eclor-edge-image");
  });
});

describe("Debian package, image build (chroot: no systemd running)", () => {
  it(
    "npm run package:deb builds eclor-edge_<version>_<arch>.deb, Depends from dpkg-shlibdeps",
    async () => {
      const r = await ok(
        "npm",
        ["run", "--silent", "package:deb", "--", "--out", tmp, "--from", prefix],
        { cwd: repoRoot },
      );
      expect(r.stdout.trim()).toBe(join(tmp, debName));
      const info = await ok("dpkg-deb", ["-f", join(tmp, debName)]);
      expect(info.stdout).toMatch(
        new RegExp(`^Version: ${pkg.version.replaceAll(".", "\\.")}$`, "m"),
      );
      expect(info.stdout).toMatch(new RegExp(`^Architecture: ${arch}$`, "m"));
      const depends = /^Depends: (.*)$/m.exec(info.stdout)?.[1] ?? "";
      // The ABI range of the Node that compiled the native modules, then what they link.
      expect(depends).toMatch(/^nodejs \(>= 20\.19\), nodejs \(<< 21\), /);
      expect(depends).toMatch(/\blibc6 \(>= 2\.\d+\)/);
      expect(depends).toMatch(/\blibstdc\+\+6 \(>= \d+/);
      expect(depends).toMatch(/\blibsystemd0 \(>= \d+\)/);
      const files = (await ok("dpkg-deb", ["-c", join(tmp, debName)])).stdout;
      expect(files).toMatch(/ \.\/usr\/share\/doc\/eclor-edge\/changelog\.gz$/m);
      expect(files).toMatch(/ \.\/usr\/share\/lintian\/overrides\/eclor-edge$/m);
    },
    10 * MIN,
  );

  it(
    "lintian: no error or warning left unexplained",
    async () => {
      // Overridden tags are in packaging/deb/lintian-overrides, each with its reason.
      const r = await run("lintian", [
        "--fail-on",
        "error,warning",
        "--tag-display-limit",
        "0",
        join(tmp, debName),
      ]);
      // lintian's own note when run as root (this test runs as root for chroot and nspawn).
      const tags = `${r.stdout}${r.stderr}`
        .split("\n")
        .filter((l) => l && !/running with root privileges is not recommended/.test(l));
      expect(tags).toEqual([]);
      expect(r.code).toBe(0);
    },
    10 * MIN,
  );

  it(
    "installs: user in dialout, state dir, config validated, service not started on the example",
    async () => {
      // /var/tmp: the booted Debian 13 mounts a tmpfs on /tmp.
      copyFileSync(join(tmp, debName), join(root, "var/tmp", debName));
      const r = await okInRoot(`apt-get install -y -q --no-install-recommends /var/tmp/${debName}`);
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

  it("every shipped example validates from /usr/lib/eclor-edge", async () => {
    await validateExamples("/usr/lib/eclor-edge");
  });

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
      const v2 = await rebuilt("rebuild1");
      const r = await okInRoot(`dpkg -i ${v2}`);
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

      const r = await okInRoot("dpkg -i /var/tmp/rebuild1.deb");
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

  it(
    "a pre-seeded config: a plain non-interactive dpkg stops at the conffile prompt, " +
      "--force-confdef --force-confold (documented) keeps it; ${VAR} from a drop-in is seen",
    async () => {
      site = await SiteRig.start();
      writeFileSync(join(root, "etc-preseed.yaml"), site.config());
      const seed =
        "mkdir -p /etc/eclor-edge /etc/systemd/system/eclor-edge.service.d && cp /etc-preseed.yaml /etc/eclor-edge/config.yaml && " +
        "printf '[Service]\\nEnvironment=ECLOR_MQTT_PASSWORD=from-image-build\\n' > /etc/systemd/system/eclor-edge.service.d/secret.conf";
      // The defect: dpkg asks about the existing file, reads EOF, leaves the package unconfigured.
      await okInRoot(seed);
      const plain = await inRoot(`dpkg -i /var/tmp/${debName} </dev/null`);
      expect(plain.code).not.toBe(0);
      expect(plain.stdout + plain.stderr).toMatch(/config\.yaml|conffile/);
      const half = await inRoot("dpkg-query -W -f='${Status}' eclor-edge");
      expect(half.stdout).not.toMatch(/installed$/);
      // Recovery (documented): configure it, keeping the pre-seeded file.
      const fixed = await okInRoot("dpkg --configure --force-confdef --force-confold eclor-edge");
      expect(fixed.stdout).toMatch(/config\.yaml is valid\./);
      await okInRoot("dpkg --purge eclor-edge");

      // The documented image-build command.
      await okInRoot(seed);
      const r = await okInRoot(
        "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef " +
          `-o Dpkg::Options::=--force-confold /var/tmp/${debName} </dev/null`,
      );
      // Validated offline with the drop-in's environment (no systemd running in a chroot).
      expect(r.stdout).toMatch(/config\.yaml is valid\./);
      expect(readFileSync(join(root, "etc/eclor-edge/config.yaml"), "utf8")).toBe(site.config());
      expect((await okInRoot("dpkg-query -W -f='${Status}' eclor-edge")).stdout).toBe(
        "install ok installed",
      );
      expect((await inRoot("systemctl is-enabled eclor-edge.service")).stdout.trim()).toBe(
        "enabled",
      );
      rmSync(join(root, "etc-preseed.yaml"));
    },
    10 * MIN,
  );
});

describe("Debian package on a running systemd (the root booted with systemd-nspawn)", () => {
  const agentPid = async () =>
    Number((await booted!.okSh("systemctl show -p MainPID --value eclor-edge")).stdout.trim());
  const isActive = async () =>
    (await booted!.sh("systemctl is-active eclor-edge || true")).stdout.trim() === "active";

  it(
    "boots, the enabled service starts on the demo config: Modbus readings and LoRaWAN codec decodes reach the broker",
    async () => {
      booted = await BootedRoot.boot(root);
      await waitFor(isActive, 2 * MIN, "eclor-edge active after boot");
      site!.startLorawan();
      await site!.waitTelemetry(
        (n, v) => n === "compteur/voltage_l1" && typeof v === "number" && v > 200,
        "an SDM630 voltage",
      );
      await site!.waitTelemetry(
        (n, v) => n === "co2-salle-conseil/co2" && typeof v === "number",
        "an AM103 CO2 decoded by its codec",
      );
      await site!.waitTelemetry(
        (n) => n === "passages-mairie/total_in",
        "a VS350 count decoded by its codec",
      );
      const st = await booted.sh("eclor-edge status --json");
      expect(st.code, st.stdout + st.stderr).toBe(0);
      expect(booted.log()).not.toMatch(/eclor-edge\.service.*[Ff]ailed/);
    },
    5 * MIN,
  );

  it(
    "errors reach the journal with their priority: journalctl -p err shows them, not info",
    async () => {
      await site!.broker.stop();
      try {
        await waitFor(
          async () =>
            (await booted!.sh("journalctl -u eclor-edge -p err -o cat --no-pager")).stdout.match(
              /ECONNREFUSED|connect/i,
            ),
          2 * MIN,
          "the uplink's connection error in journalctl -p err",
        );
      } finally {
        await site!.broker.start();
      }
      const err = (await booted!.okSh("journalctl -u eclor-edge -p err -o cat --no-pager")).stdout;
      for (const line of err.split("\n").filter((l) => l.startsWith("{"))) {
        expect((JSON.parse(line) as { level: number }).level).toBeGreaterThanOrEqual(50);
      }
      const info = (await booted!.okSh("journalctl -u eclor-edge -p info -o cat --no-pager"))
        .stdout;
      expect(info).toMatch(/"level":30/);
    },
    3 * MIN,
  );

  it("sandbox: /etc/eclor-edge read-only for the service, the store writable, MemoryMax set", async () => {
    const pid = await agentPid();
    const w = await booted!.sh(`nsenter -t ${pid} -m -- touch /etc/eclor-edge/written-by-agent`);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/Read-only file system/);
    await booted!.okSh(
      `nsenter -t ${pid} -m -- touch /var/lib/eclor-edge/written-by-agent && rm /var/lib/eclor-edge/written-by-agent`,
    );
    const show = await booted!.okSh("systemctl show -p MemoryMax -p DeviceAllow eclor-edge");
    expect(show.stdout).toMatch(/^MemoryMax=536870912$/m);
    expect(show.stdout).toMatch(/char-ttySC rw/);
  });

  it(
    "an upgrade of the running service, its ${VAR} secret set by `systemctl edit`: running afterwards",
    async () => {
      // The secret now only in the drop-in `systemctl edit` writes (override.conf).
      await booted!.okSh(
        "rm /etc/systemd/system/eclor-edge.service.d/secret.conf && " +
          "printf '[Service]\\nEnvironment=ECLOR_MQTT_PASSWORD=set-by-systemctl-edit\\n' | systemctl edit --stdin eclor-edge && " +
          "systemctl restart eclor-edge",
      );
      await waitFor(isActive, MIN, "active after the restart");
      const before = await agentPid();
      const v2 = await rebuilt("rebuild2");
      const r = await booted!.okSh(`dpkg -i ${v2}`);
      expect(r.stdout).toMatch(/config\.yaml is valid\./);
      expect(r.stdout).not.toMatch(/NOT started/);
      await waitFor(isActive, MIN, "active after the upgrade");
      expect(await agentPid()).not.toBe(before);
      expect(readFileSync(join(root, "usr/lib/eclor-edge/REBUILT"), "utf8")).toBe("rebuild2\n");
      const since = site!.seen();
      await site!.waitTelemetry(
        (n) => n === "compteur/voltage_l1",
        "readings after the upgrade",
        since,
      );
    },
    5 * MIN,
  );

  it(
    "the documented backup (stop, copy), upgrade: running again; rollback (restore, previous package): running",
    async () => {
      await booted!.okSh(
        "touch /var/lib/eclor-edge/before-backup && chown eclor-edge: /var/lib/eclor-edge/before-backup && " +
          `systemctl stop eclor-edge && cp -a /var/lib/eclor-edge /var/lib/eclor-edge.bak-${pkg.version}+rebuild2`,
      );
      const v3 = await rebuilt("rebuild3");
      const up = await booted!.okSh(`apt-get install -y -q ${v3}`);
      expect(up.stdout).toMatch(/config\.yaml is valid\./);
      await waitFor(isActive, MIN, "active after the upgrade that followed the backup");
      await booted!.okSh("rm /var/lib/eclor-edge/before-backup");

      // Rollback, as docs/operations.md says.
      await booted!.okSh(
        "systemctl stop eclor-edge && rm -rf /var/lib/eclor-edge && " +
          `cp -a /var/lib/eclor-edge.bak-${pkg.version}+rebuild2 /var/lib/eclor-edge && ` +
          "apt-get install -y -q --allow-downgrades /var/tmp/rebuild2.deb",
      );
      await waitFor(isActive, MIN, "active after the rollback");
      expect((await booted!.okSh("dpkg-query -W -f='${Version}' eclor-edge")).stdout).toBe(
        `${pkg.version}+rebuild2`,
      );
      expect(existsSync(join(root, "var/lib/eclor-edge/before-backup"))).toBe(true);
      const since = site!.seen();
      await site!.waitTelemetry(
        (n) => n === "compteur/voltage_l1",
        "readings after the rollback",
        since,
      );
    },
    5 * MIN,
  );

  it(
    "a disabled, stopped service stays stopped across an upgrade (the administrator's choice)",
    async () => {
      await booted!.okSh("systemctl disable --now eclor-edge");
      const r = await booted!.okSh("dpkg -i /var/tmp/rebuild3.deb");
      expect(r.stdout).toMatch(/config\.yaml is valid\./);
      expect(await isActive()).toBe(false);
      expect((await booted!.sh("systemctl is-enabled eclor-edge")).stdout.trim()).toBe("disabled");
    },
    3 * MIN,
  );
});
