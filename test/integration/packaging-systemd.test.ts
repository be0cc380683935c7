/**
 * The systemd units, checked by systemd itself: `systemd-analyze verify` (any stderr is a
 * failure: unknown keys only warn and exit 0), the hardening the installers rely on, and the
 * `systemd-analyze security` exposure score recorded in docs/operations.md.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const notifyUnit = join(repo, "systemd/eclor-edge.service");
const execUnit = join(repo, "systemd/eclor-edge-exec.service");
const tmp = mkdtempSync(join(tmpdir(), "eclor-units-"));

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * verify checks that ExecStart's binary exists. The units name Debian's /usr/bin/node; on a
 * machine whose node lives elsewhere, verify a copy that names this node instead (the only
 * change). The real paths are verified inside a Debian 13 root by packaging-install.test.ts.
 */
function forThisMachine(unit: string): string {
  if (existsSync("/usr/bin/node")) return unit;
  const copy = join(tmp, unit.split("/").pop()!);
  writeFileSync(
    copy,
    readFileSync(unit, "utf8").replaceAll("/usr/bin/node ", `${process.execPath} `),
  );
  return copy;
}

function verify(unit: string) {
  const r = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8", cwd: tmp });
  return { status: r.status, stderr: r.stderr, error: r.error };
}

/** `Key=value` lines of a unit (comments and blank lines dropped), in order. */
function settings(unit: string): string[] {
  return readFileSync(unit, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

function values(unit: string, key: string): string[] {
  return settings(unit)
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

describe("systemd units", () => {
  it.each([notifyUnit, execUnit])(
    "systemd-analyze verify %s: exit 0, nothing on stderr",
    (unit) => {
      const r = verify(forThisMachine(unit));
      expect(r.error).toBeUndefined();
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    },
  );

  it("the verify check can fail: a misspelt key only warns, and the test sees it", () => {
    const bad = join(tmp, "bad.service");
    writeFileSync(
      bad,
      readFileSync(forThisMachine(notifyUnit), "utf8").replace(
        "NoNewPrivileges=",
        "NoNewPrivilege=",
      ),
    );
    const r = verify(bad);
    expect(r.status).toBe(0); // why stderr is the criterion
    expect(r.stderr).toMatch(/Unknown key.*NoNewPrivilege\b/);
  });

  it("runs node directly as the main PID, Type=notify with watchdog, restarts forever", () => {
    expect(values(notifyUnit, "ExecStart")).toEqual([
      "/usr/bin/node --max-old-space-size=256 /usr/lib/eclor-edge/dist/agent/main.js run --config /etc/eclor-edge/config.yaml",
    ]);
    // Waits for NTP at most 60 s, never fails the start for it (see the unit's comment).
    expect(values(notifyUnit, "ExecStartPre")).toEqual([
      "-+/usr/bin/timeout 60s /usr/lib/systemd/systemd-time-wait-sync",
    ]);
    expect(values(notifyUnit, "Type")).toEqual(["notify"]);
    expect(values(notifyUnit, "NotifyAccess")).toEqual(["main"]);
    expect(values(notifyUnit, "WatchdogSec")).toEqual(["30s"]);
    expect(values(notifyUnit, "Restart")).toEqual(["always"]);
    expect(values(notifyUnit, "RestartSec")).toEqual(["5s"]);
  });

  it("has the hardening the issue asks for", () => {
    const s = settings(notifyUnit);
    for (const line of [
      "User=eclor-edge",
      "SupplementaryGroups=dialout",
      "ProtectSystem=strict",
      "StateDirectory=eclor-edge",
      "RuntimeDirectory=eclor-edge",
      "ReadOnlyPaths=/etc/eclor-edge",
      "MemoryMax=512M",
      "DeviceAllow=char-ttySC rw",
      "DeviceAllow=char-ttymxc rw",
      "DeviceAllow=char-ttyLP rw",
      "NoNewPrivileges=yes",
      "CapabilityBoundingSet=",
      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
      "SystemCallFilter=@system-service",
      "UMask=0077",
    ]) {
      expect(s).toContain(line);
    }
    // ConfigurationDirectory= would make /etc/eclor-edge writable under ProtectSystem=strict.
    expect(s.filter((l) => l.startsWith("ConfigurationDirectory"))).toEqual([]);
  });

  it("the Type=exec variant differs only in readiness and watchdog settings", () => {
    const differs = (a: string[], b: string[]) => a.filter((l) => !b.includes(l));
    const n = settings(notifyUnit);
    const e = settings(execUnit);
    expect(differs(n, e)).toEqual([
      "Type=notify",
      "NotifyAccess=main",
      "TimeoutStartSec=120s",
      "WatchdogSec=30s",
    ]);
    expect(differs(e, n)).toEqual(["Type=exec"]);
  });

  it("docs/operations.md records the current systemd-analyze security exposure score", () => {
    const r = spawnSync("systemd-analyze", ["security", "--offline=true", notifyUnit], {
      encoding: "utf8",
      cwd: tmp,
    });
    expect(r.status).toBe(0);
    const score = /Overall exposure level for eclor-edge\.service: (\d+\.\d)/.exec(r.stdout)?.[1];
    expect(score).toBeDefined();
    const docs = readFileSync(join(repo, "docs/operations.md"), "utf8");
    const recorded = /exposure score[^\n]*?\*\*(\d+\.\d)\*\*/.exec(docs)?.[1];
    expect(recorded, "docs/operations.md: 'exposure score … **N.N**'").toBe(score);
  });
});
