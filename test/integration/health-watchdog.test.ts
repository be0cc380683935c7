/**
 * The systemd watchdog follows the health model (issue 13.2): the daemon pings WATCHDOG=1 only
 * while it is healthy enough that a restart would not help. Checked against a real AF_UNIX
 * datagram receiver standing in for systemd (health-fixtures.ts `NotifyReceiver`, which also
 * plays systemd's WatchdogSec= timer), with the real optional `sd-notify` helper:
 *
 * - a store that stops taking writes while the agent runs (the process's file-size limit set to
 *   0 with prlimit(1): every write to the database file fails with EFBIG, as on a device that
 *   went read-only) stops the pings;
 * - a frozen event loop (the daemon blocks its own loop, started with a preload that does so on
 *   SIGUSR2) stops the pings;
 * - a driver that cannot start only degrades: the pings go on.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, waitFor } from "../helpers/ports.js";
import { Daemon, NotifyReceiver, cli, sdNotifyBuilt } from "./health-fixtures.js";

// Pings every 1 s; systemd (the receiver) gives up after 2 s without one.
const WATCHDOG_USEC = 2_000_000;
const dir = mkdtempSync(join(tmpdir(), "eclor-watchdog-"));
const notifySock = join(dir, "notify.sock");
let receiver: NotifyReceiver;

beforeAll(async () => {
  receiver = await NotifyReceiver.start(notifySock, WATCHDOG_USEC);
});
afterAll(() => {
  receiver?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function config(name: string, drivers = ""): Promise<{ path: string; sock: string }> {
  const port = await freePort(); // nobody listens: the uplink stays down (degraded only)
  const sock = join(dir, `${name}.sock`);
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    [
      "version: 1",
      `gateway: { id: ${name} }`,
      `state_dir: ${join(dir, name)}`,
      `uplink: { url: "mqtt://127.0.0.1:${port}", reconnect_min_ms: 1000 }`,
      // The watchdog gives an unwritable store three retries (3 × retry_ms) before it stops.
      "store: { retry_ms: 200 }",
      `control: { socket: ${sock} }`,
      "log: { level: fatal }",
      drivers,
    ].join("\n"),
  );
  return { path, sock };
}

function start(path: string, nodeArgs: string[] = []): Daemon {
  return Daemon.start(path, {
    env: { NOTIFY_SOCKET: notifySock, WATCHDOG_USEC: String(WATCHDOG_USEC) },
    nodeArgs,
  });
}

/** Wait until the daemon is READY and pinging, with no expiry meanwhile; returns the mark. */
async function pinging(d: Daemon): Promise<{ from: number; expiries: number }> {
  const from = receiver.got.length;
  const expiries = receiver.expiries.length;
  await waitFor(
    () => {
      if (d.proc.exitCode !== null) throw new Error(`daemon exited: ${d.log}`);
      return receiver.got.slice(from).some((m) => m.pid === d.pid && m.state === "READY=1");
    },
    30_000,
    "READY=1",
  );
  await waitFor(() => receiver.pings(from) >= 3, 20_000, "three watchdog pings");
  expect(receiver.expiries.length).toBe(expiries);
  return { from: receiver.got.length, expiries };
}

describe.runIf(sdNotifyBuilt() || process.env.CI)("the watchdog follows the health model", () => {
  it("a store that cannot be written any more stops the pings", async () => {
    const c = await config("wd-store");
    const d = start(c.path);
    try {
      const mark = await pinging(d);
      execFileSync("prlimit", ["--pid", String(d.pid), "--fsize=0:unlimited"]);
      await waitFor(
        () => receiver.expiries.length > mark.expiries,
        60_000,
        "systemd's watchdog to expire",
      );
      // Still alive and saying why (systemd would now restart it).
      const r = await cli(["status"], c.sock);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain("Health   FAILED");
      expect(r.stdout).toMatch(/the store cannot be written: .*write probe failed/);
    } finally {
      await d.stop();
    }
  }, 120_000);

  it("a frozen event loop stops the pings", async () => {
    const c = await config("wd-frozen");
    const preload = join(dir, "freeze-on-sigusr2.mjs");
    // What a runaway synchronous loop looks like from outside: nothing runs on the main thread.
    writeFileSync(preload, 'process.on("SIGUSR2", () => { for (;;) {} });\n');
    const d = start(c.path, ["--import", preload]);
    try {
      const mark = await pinging(d);
      d.proc.kill("SIGUSR2");
      await waitFor(
        () => receiver.expiries.length > mark.expiries,
        30_000,
        "systemd's watchdog to expire",
      );
    } finally {
      await d.stop();
    }
  }, 90_000);

  it("a driver that cannot start only degrades: the pings go on", async () => {
    const c = await config(
      "wd-degraded",
      `drivers:
  - id: linky
    driver: tic
    path: /dev/ttyECLOR-NOPE
    devices: [ { id: compteur } ]`,
    );
    const d = start(c.path);
    try {
      await pinging(d);
      const r = await waitFor(
        async () => {
          const x = await cli(["status"], c.sock);
          return x.stdout.includes("linky (tic) FAILED") ? x : undefined;
        },
        30_000,
        "the TIC driver reported failed",
      );
      expect(r.code).toBe(1);
      // Pings after the degraded report, and systemd never gave up.
      const from = receiver.got.length;
      const expiries = receiver.expiries.length;
      await waitFor(() => receiver.pings(from) >= 3, 20_000, "pings while degraded");
      expect(receiver.expiries.length).toBe(expiries);
      const st = receiver.got.filter((m) => m.pid === d.pid && m.state.startsWith("STATUS="));
      expect(st.at(-1)?.state).toMatch(/DEGRADED: driver "linky" \(tic\) failed/);
    } finally {
      await d.stop();
    }
  }, 90_000);
});
