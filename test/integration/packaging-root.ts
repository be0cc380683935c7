/**
 * Helpers of the package-install test: processes with their output, and a Debian 13 root made
 * by debootstrap from the machine's own apt mirror (never an address written in the repository).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { waitFor } from "../helpers/ports.js";

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A clean environment for Debian tools: nothing of this test runner leaks into the chroot. */
export const debianEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
  DEBIAN_FRONTEND: "noninteractive",
};

export function run(
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

export async function ok(
  cmd: string,
  args: string[],
  opts: Parameters<typeof run>[2] = {},
): Promise<Result> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/**
 * The Debian mirror this machine installs from: the first `URIs:` of a deb822 source in
 * /etc/apt/sources.list.d/*.sources that is not a security or updates suite.
 */
export function debianMirror(dir = "/etc/apt/sources.list.d"): string {
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith(".sources"))
    .sort()) {
    for (const stanza of readFileSync(join(dir, f), "utf8").split(/\n\s*\n/)) {
      const field = (k: string) =>
        new RegExp(`^${k}:\\s*(.+)$`, "mi").exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (!field("Types").includes("deb")) continue;
      if (field("Suites").every((s) => /-(security|updates)$/.test(s))) continue;
      const uri = field("URIs")[0];
      if (uri) return uri;
    }
  }
  throw new Error(`no deb source with URIs: in ${dir}/*.sources (the test needs a mirror)`);
}

/** Shell commands inside a Debian root (chroot, clean environment). */
export function chrootShell(root: string) {
  const inRoot = (script: string, env: Record<string, string> = {}) =>
    run("chroot", [root, "/bin/sh", "-ec", script], { env: { ...debianEnv, ...env } });
  const okInRoot = async (script: string, env: Record<string, string> = {}) => {
    const r = await inRoot(script, env);
    if (r.code !== 0)
      throw new Error(`in root: ${script}\nexit ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  return { inRoot, okInRoot };
}

/** debootstrap a minimal Debian 13 into `root`, then the packages the test needs. */
export async function debianRoot(root: string, packages: string[]): Promise<void> {
  await ok("debootstrap", ["--variant=minbase", "trixie", root, debianMirror()], {
    env: debianEnv,
  });
  await chrootShell(root).okInRoot(
    `apt-get update -qq && apt-get install -y -qq --no-install-recommends ${packages.join(" ")}`,
  );
}

/**
 * The Debian root booted with its own systemd as PID 1 (systemd-nspawn --boot, the host's
 * network, no machined registration): the service runs as on a gateway. Commands run inside
 * with nsenter into the container's namespaces.
 */
export class BootedRoot {
  private constructor(
    private readonly proc: ChildProcess,
    readonly initPid: number,
    readonly log: () => string,
  ) {}

  static async boot(root: string): Promise<BootedRoot> {
    const proc = spawn(
      "systemd-nspawn",
      // A machine name of its own: nspawn keeps per-name state under /run/systemd/nspawn/, and
      // other roots called "trixie" may be booted on this machine at the same time.
      [
        "--quiet",
        "--directory",
        root,
        `--machine=eclor-${basename(dirname(root)).replace(/[^A-Za-z0-9-]/g, "")}`,
        "--boot",
        // No machined and no system bus on the host: do not register, and stay in the caller's
        // unit instead of asking the host's systemd for a scope (nspawn fails otherwise).
        "--register=no",
        "--keep-unit",
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: debianEnv },
    );
    let log = "";
    proc.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    // The container's PID 1 is a child of nspawn (in some setups of its inner child).
    const init = await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`systemd-nspawn exited: ${log}`);
        const kids = await children(proc.pid!);
        const grandkids = (await Promise.all(kids.map(children))).flat();
        for (const pid of [...kids, ...grandkids]) {
          try {
            if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "systemd") return pid;
          } catch {
            // exited meanwhile
          }
        }
        return 0;
      },
      60_000,
      "the container's systemd",
    );
    const booted = new BootedRoot(proc, init, () => log);
    // "running" or "degraded" (a unit the container cannot run, e.g. a getty): booted either way.
    await waitFor(
      async () =>
        /^(running|degraded)$/m.test(
          (await booted.sh("systemctl is-system-running || true")).stdout,
        ),
      120_000,
      "the container's boot",
    );
    return booted;
  }

  /** A shell command inside the booted root, as root. */
  sh(script: string): Promise<Result> {
    return run("nsenter", ["-t", String(this.initPid), "-a", "/bin/sh", "-ec", script], {
      env: debianEnv,
    });
  }

  async okSh(script: string): Promise<Result> {
    const r = await this.sh(script);
    if (r.code !== 0)
      throw new Error(`in booted root: ${script}\nexit ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  /** Power off (nspawn turns SIGTERM into a clean shutdown of the container). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once("exit", () => resolve());
      p.kill("SIGTERM");
      setTimeout(() => p.kill("SIGKILL"), 60_000).unref();
    });
  }
}

async function children(pid: number): Promise<number[]> {
  const r = await run("pgrep", ["-P", String(pid)]);
  return r.stdout.split("\n").filter(Boolean).map(Number);
}
