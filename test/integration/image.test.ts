/**
 * The flashable gateway image (packaging/image/, issue 22), built and booted as an installer
 * would use it: build the raw disk image from this tree, read its file list from the image
 * itself, drop a provisioning bundle on its FAT partition, and boot its root partition with the
 * image's own systemd as PID 1 (unshare + chroot: systemd-nspawn needs a systemd on the host).
 * A real Mosquitto (mTLS + enrolment listeners, docs/provisioning/) and the reference enrolment
 * service run on loopback, with a simulated Modbus meter for the box to poll. Needs root (CI is).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PREFIX, Platform } from "./provision-fixture.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { repoRoot } from "./packaging-dockerfile.js";

const MIN = 60_000;
const tmp = mkdtempSync("/var/tmp/eclor-image-test-");
const mnt = join(tmp, "root");
const fatDir = join(tmp, "fat");
const GW = "gw-image-01";
let img = "";
let build: { raw_bytes: number; xz_bytes: number; build_s: number; kernel: string };
let parts: { start: number; size: number; name: string }[] = [];
const mounted: string[] = [];

function sh(cmd: string, args: string[], opts: { input?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/** The build context: the repository without its build output, so dist/ is never rewritten
 * under the feet of other test files (the same reason as packaging-install.test.ts). */
function context(): string {
  const ctx = join(tmp, "src");
  const skip = new Set(["node_modules", "dist", ".git", "dist-image"]);
  mkdirSync(ctx);
  for (const e of readdirSync(repoRoot)) {
    if (!skip.has(e)) cpSync(join(repoRoot, e), join(ctx, e), { recursive: true });
  }
  symlinkSync(join(repoRoot, "node_modules"), join(ctx, "node_modules"));
  return ctx;
}

const bytesAt = (p: { start: number }) => p.start * 512;
/** For conditions that spawn a process inside the box: poll every 250 ms, not every 25 ms. */
const slowly =
  <T>(cond: () => T) =>
  async (): Promise<T> => {
    await new Promise((r) => setTimeout(r, 250));
    return cond();
  };
const part = (name: string) => parts.find((p) => p.name === name)!;

function mountPart(name: string, dir: string, ro: boolean): void {
  const p = part(name);
  mkdirSync(dir, { recursive: true });
  const o = `${ro ? "ro" : "rw"},loop,offset=${bytesAt(p)},sizelimit=${p.size * 512}`;
  sh("mount", ["-o", o, img, dir]);
  mounted.push(dir);
}

function unmountAll(): void {
  for (const d of mounted.splice(0).reverse()) spawnSync("umount", ["-l", d]);
}

/** `mtools` on the image's FAT partition, without mounting it (what an installer's laptop does). */
const fat = (tool: string, ...args: string[]) =>
  sh(tool, ["-i", `${img}@@${bytesAt(part("ECLOR-BOOT"))}`, ...args]);

beforeAll(async () => {
  const ctx = context();
  const out = sh("bash", [join(ctx, "packaging/image/build.sh"), "--out", join(tmp, "out")]);
  build = JSON.parse(out.trim().split("\n").pop()!);
  img = join(
    tmp,
    "out",
    readdirSync(join(tmp, "out")).find((f) => f.endsWith(".img"))!,
  );
  const table = JSON.parse(sh("sfdisk", ["--json", img])) as {
    partitiontable: { partitions: { start: number; size: number; name: string }[] };
  };
  parts = table.partitiontable.partitions;
  // Figures for the closing note (goals: raw ≤ 600 MB, xz ≤ 200 MB).
  console.log(`image: ${JSON.stringify(build)}`);
}, 40 * MIN);

afterAll(() => {
  unmountAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe("the gateway image as built", () => {
  it("is a GPT disk with the boot (FAT, ESP) and root (ext4) partitions, within the size goals", () => {
    expect(parts.map((p) => p.name)).toEqual(["ECLOR-BOOT", "eclor-root"]);
    expect(build.raw_bytes).toBeLessThanOrEqual(600 * 1024 * 1024);
    expect(build.xz_bytes).toBeLessThanOrEqual(200 * 1024 * 1024);
    const listing = fat("mdir", "-/", "-b", "::/");
    for (const f of [
      "EFI/BOOT/BOOTX64.EFI",
      "vmlinuz",
      "initrd.img",
      "loader/entries/eclor.conf",
    ]) {
      expect(listing).toContain(`::/${f}`);
    }
    expect(fat("mtype", "::/loader/entries/eclor.conf")).toMatch(/root=LABEL=eclor-root/);
    expect(fat("mtype", "::/eclor-edge/README.txt")).toMatch(/eclor-edge\/bundle\.yaml/);
  });

  it("root: the agent and its units, enabled as documented, no secrets, no build tools", () => {
    mountPart("eclor-root", join(tmp, "ro"), true);
    const r = (p: string) => join(tmp, "ro", p);
    try {
      for (const f of [
        "usr/lib/eclor-edge/dist/agent/main.js",
        "usr/lib/eclor-edge/drivers/modbus/profiles/eastron-sdm630.yaml",
        "usr/lib/systemd/system/eclor-edge.service",
        "usr/lib/systemd/system/eclor-edge-firstboot.service",
        "usr/lib/eclor-edge/image-firstboot.sh",
        "etc/systemd/journald.conf.d/eclor-edge.conf",
        "usr/lib/systemd/system/systemd-timesyncd.service",
      ]) {
        expect(existsSync(r(f)), f).toBe(true);
      }
      const wants = readdirSync(r("etc/systemd/system/multi-user.target.wants"));
      expect(wants).toContain("eclor-edge-firstboot.service");
      expect(wants).toContain("eclor-edge-firstboot.path");
      expect(wants).not.toContain("eclor-edge.service"); // enabled by the first boot
      expect(wants).not.toContain("ssh.service"); // SSH off by default
      expect(readFileSync(r("etc/systemd/journald.conf.d/eclor-edge.conf"), "utf8")).toMatch(
        /Storage=persistent[\s\S]*SystemMaxUse=64M/,
      );
      // No password logins: root locked, nobody else has a password.
      const shadow = readFileSync(r("etc/shadow"), "utf8").trim().split("\n");
      for (const line of shadow) expect(line.split(":")[1], line).toMatch(/^[!*]/);
      expect(readFileSync(r("etc/ssh/sshd_config.d/eclor-edge.conf"), "utf8")).toMatch(
        /PasswordAuthentication no/,
      );
      // Nothing per box and no secret: machine id, SSH host keys, keys, bundles, state.
      expect(readFileSync(r("etc/machine-id"), "utf8")).toBe("");
      expect(readdirSync(r("etc/ssh")).filter((f) => f.startsWith("ssh_host_"))).toEqual([]);
      expect(readdirSync(r("var/lib/eclor-edge"))).toEqual([]);
      expect(readdirSync(r("etc/eclor-edge")).sort()).toEqual(["config.yaml"]);
      const secrets = sh("find", [
        r("etc"),
        r("var"),
        r("root"),
        r("usr/lib/eclor-edge"),
        "-xdev",
        "(",
        "-name",
        "*.pem",
        "-o",
        "-name",
        "*.key",
        "-o",
        "-name",
        "bundle*.yaml",
        ")",
        "-not",
        "-path",
        "*/node_modules/*",
        "-not",
        "-path",
        "*/etc/ssl/*",
        "-not",
        "-path",
        "*/usr/share/ca-certificates/*",
      ]);
      expect(secrets.trim()).toBe("");
      // No build tools shipped.
      for (const t of ["gcc", "g++", "cc", "make", "python3", "npm"]) {
        expect(existsSync(r(`usr/bin/${t}`)), t).toBe(false);
      }
    } finally {
      unmountAll();
    }
  });
});

/** One boot of the image's root with its own systemd as PID 1. */
class Box {
  private child!: ChildProcess;
  private exited = false;
  readonly console: string[] = [];
  pid = 0;

  static async boot(): Promise<Box> {
    const b = new Box();
    mountPart("eclor-root", mnt, false);
    // This machine's kernel has no vfat module, so the FAT partition cannot be mounted here: its
    // files are copied out with mtools, bind-mounted at /boot/firmware, and written back to the
    // partition at power-off (Box.poweroff), where the checks read them with mtools again.
    rmSync(fatDir, { recursive: true, force: true });
    mkdirSync(fatDir);
    fat("mcopy", "-s", "-n", "::/*", fatDir);
    sh("mount", ["--bind", fatDir, join(mnt, "boot/firmware")]);
    mounted.push(join(mnt, "boot/firmware"));
    try {
      // The box's network is not the host's: networkd/resolved stay off inside this test boot
      // (the container shares the host's network namespace, to reach the broker on loopback).
      const init = [
        "/lib/systemd/systemd",
        "systemd.mask=systemd-networkd.service",
        "systemd.mask=systemd-networkd.socket",
        "systemd.mask=systemd-networkd-wait-online.service",
        "systemd.mask=systemd-resolved.service",
        "systemd.show_status=no",
      ].join(" ");
      const script = [
        "set -e",
        `R=${mnt}`,
        "mount -t proc proc $R/proc",
        "mount -t sysfs -o ro sysfs $R/sys",
        "mount -t tmpfs -o mode=755 tmpfs $R/run",
        "mount -t tmpfs tmpfs $R/tmp",
        "mount --rbind /dev $R/dev",
        // systemd-timesyncd does not run in a container (ConditionVirtualization=!container); the
        // box's clock is the host's, so say it is synchronised the way timesyncd does on a box.
        "mkdir -p $R/run/systemd/timesync && touch $R/run/systemd/timesync/synchronized",
        `exec chroot $R env -i container=eclor-test TERM=dumb ${init}`,
      ].join("\n");
      b.child = spawn(
        "unshare",
        ["--pid", "--fork", "--mount", "--uts", "--ipc", "sh", "-c", script],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      b.child.stdout!.on("data", (d: Buffer) => b.console.push(d.toString()));
      b.child.stderr!.on("data", (d: Buffer) => b.console.push(d.toString()));
      b.child.on("exit", () => (b.exited = true));
      // PID 1 of the box, seen from here: the child that unshare forked (sh → chroot → systemd).
      await waitFor(
        () => {
          const r = spawnSync("pgrep", ["-P", String(b.child.pid)], { encoding: "utf8" });
          b.pid = Number(r.stdout.trim().split("\n")[0] || 0);
          return b.pid > 0 && readFileSync(`/proc/${b.pid}/comm`, "utf8").trim() === "systemd";
        },
        60_000,
        "systemd running as the box's PID 1",
      );
      await waitFor(
        slowly(() => b.exec("systemctl", "is-system-running").trim() !== ""),
        120_000,
        "systemd",
      );
    } catch (e) {
      if (b.pid > 0) spawnSync("kill", ["-KILL", String(b.pid)]);
      b.child?.kill("SIGKILL");
      unmountAll();
      throw e;
    }
    return b;
  }

  /** A command inside the box (its namespaces and root). */
  exec(...cmd: string[]): string {
    const r = spawnSync(
      "nsenter",
      ["-t", String(this.pid), "-m", "-u", "-i", "-p", "-r", "-w", ...cmd],
      {
        encoding: "utf8",
      },
    );
    return `${r.stdout}${r.stderr}`;
  }

  async poweroff(): Promise<void> {
    this.exec("systemctl", "poweroff", "--no-block");
    await waitFor(() => this.exited, 120_000, "the box to power off");
    unmountAll();
    // What the box left in its eclor-edge folder goes back onto the FAT partition.
    fat("mdeltree", "::/eclor-edge");
    fat("mcopy", "-s", join(fatDir, "eclor-edge"), "::/");
  }
}

describe("first boot of the image", () => {
  let platform: Platform;
  let hv: MqttClient;
  let sim: ChildProcess | undefined;
  const telemetry: number[] = [];
  let box: Box | undefined;

  beforeAll(async () => {
    platform = await Platform.start({ service: false });
    const simPort = await freePort();
    sim = spawn(
      process.execPath,
      [
        join(repoRoot, "dist/agent/main.js"),
        "sim",
        "modbus",
        "--listen",
        `127.0.0.1:${simPort}`,
        "--device",
        "1:eastron-sdm630",
      ],
      { stdio: "ignore" },
    );
    const configs = join(platform.dir, "configs");
    mkdirSync(configs);
    // The initial configuration the platform sends with the certificate: one meter to poll.
    writeFileSync(
      join(configs, `${GW}.yaml`),
      [
        "version: 1",
        "drivers:",
        "  - id: armoire",
        "    driver: modbus",
        `    transport: { type: tcp, host: 127.0.0.1, port: ${simPort} }`,
        "    poll_interval: 1s",
        "    devices:",
        "      - { id: compteur, profile: eastron-sdm630, unit_id: 1 }",
        "",
      ].join("\n"),
    );
    await platform.startService(86_400_000, configs);
    hv = await platform.platformClient();
    await hv.subscribeAsync(`${PREFIX}/${GW}/telemetry`, { qos: 1 });
    hv.on("message", () => telemetry.push(Date.now()));
  }, 2 * MIN);

  // A failed assertion must not leave the box running and its partitions mounted for the next
  // test: every boot test ends with a power-off, passed or not.
  afterEach(async () => {
    if (box) await box.poweroff().catch(() => undefined);
    box = undefined;
  });

  afterAll(async () => {
    sim?.kill();
    await hv?.endAsync(true);
    await platform?.dispose();
  });

  it(
    "without a bundle the box waits for one, and says so on the console and in `eclor-edge status`",
    async () => {
      box = await Box.boot();
      await waitFor(
        slowly(() => box!.exec("cat", "/run/eclor-edge/waiting-for-bundle").includes("waiting")),
        120_000,
        "the waiting-for-bundle state",
      );
      expect(box.exec("eclor-edge", "status")).toMatch(/waiting for a provisioning bundle/);
      expect(box.exec("cat", "/run/issue.d/50-eclor-edge.issue")).toMatch(/bundle\.yaml/);
      // The unit writes to journal+console; the console of this test boot is the host's, so the
      // same lines are read from the box's journal.
      expect(box.exec("journalctl", "-b", "-u", "eclor-edge-firstboot", "-o", "cat")).toMatch(
        /waiting for a provisioning bundle/,
      );
      expect(box.exec("systemctl", "is-active", "eclor-edge.service").trim()).not.toBe("active");
      await box.poweroff();
      box = undefined;
    },
    5 * MIN,
  );

  it(
    "with a bundle on the FAT partition: enrols, names itself, the agent's telemetry reaches the broker, the secret is gone from FAT",
    async () => {
      const bundle = platform.writeBundle(tmp, GW);
      fat("mcopy", bundle, "::/eclor-edge/bundle.yaml"); // what the installer does on a laptop
      const t0 = Date.now();
      box = await Box.boot();
      await waitFor(() => telemetry.length > 0, 5 * MIN, "the box's first telemetry at the broker");
      const firstTelemetryS = (telemetry[0]! - t0) / 1000;
      console.log(
        `image: first telemetry ${firstTelemetryS.toFixed(1)} s after boot (goal ≤ 60 s)`,
      );
      expect(box.exec("hostname").trim()).toBe(GW);
      expect(box.exec("cat", "/etc/eclor-edge/bundle.yaml")).toMatch(new RegExp(`id: ${GW}`));
      expect(box.exec("systemctl", "is-enabled", "eclor-edge.service").trim()).toBe("enabled");
      const files = readdirSync(join(fatDir, "eclor-edge"));
      expect(files).not.toContain("bundle.yaml");
      expect(files).toContain("enrolled.txt");
      await box.poweroff();
      box = undefined;
      // Read from the card as a laptop would: the secret is not on the FAT partition any more.
      expect(fat("mdir", "-b", "::/eclor-edge")).not.toMatch(/bundle\.yaml/i);
    },
    10 * MIN,
  );

  it(
    "a second boot does not enrol again and the telemetry flows again",
    async () => {
      mountPart("eclor-root", join(tmp, "peek"), true);
      const certBefore = statSync(join(tmp, "peek/var/lib/eclor-edge/provision/cert.pem")).mtimeMs;
      unmountAll();
      const seen = telemetry.length;
      box = await Box.boot();
      await waitFor(() => telemetry.length > seen, 5 * MIN, "telemetry after the second boot");
      // The journal is persistent and a container boot keeps the host's boot id, so it holds
      // both boots: the enrolment appears once, from the first.
      const journal = box.exec("journalctl", "-u", "eclor-edge-firstboot", "-o", "cat");
      expect(journal.match(/enrolling as/g)).toHaveLength(1);
      expect(statSync(join(mnt, "var/lib/eclor-edge/provision/cert.pem")).mtimeMs).toBe(certBefore);
      await box.poweroff();
      box = undefined;
    },
    10 * MIN,
  );
});
