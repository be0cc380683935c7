/**
 * The notifier against a real AF_UNIX datagram socket, the way systemd receives sd_notify(3)
 * messages: an independent receiver (Debian's Python) binds the socket with SO_PASSCRED and
 * records each datagram with the sender's PID, which is what `NotifyAccess=main` checks.
 * The agent side runs as a child `node` process using the compiled module and the real
 * optional `sd-notify` helper.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, waitFor } from "../helpers/ports.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const notifyJs = join(repo, "dist/agent/systemd/notify.js");
const mainJs = join(repo, "dist/agent/main.js");

const receiverPy = `
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    print(json.dumps({"pid": pid, "state": data.decode()}), flush=True)
`;

const childJs = `
import { createNotifier } from ${JSON.stringify(notifyJs)};
const n = createNotifier();
if (!n.active) { console.error("notifier inactive"); process.exit(3); }
n.watchdog.start();
n.ready("store open, uplink connecting");
n.status("uplink connected");
process.stdin.on("data", () => { n.stopping("flushing the store"); process.exit(0); });
`;

function sdNotifyBuilt(): boolean {
  try {
    createRequire(import.meta.url)("sd-notify");
    return true;
  } catch {
    return false;
  }
}

describe("sd_notify over a real datagram socket", () => {
  let dir: string;
  let receiver: ChildProcess;
  const got: { pid: number | null; state: string }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "eclor-notify-"));
    receiver = spawn("/usr/bin/python3", ["-c", receiverPy, join(dir, "notify.sock")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let buf = "";
    let listening = false;
    receiver.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, i)) as {
          listening?: boolean;
          pid: number | null;
          state: string;
        };
        buf = buf.slice(i + 1);
        if (msg.listening) listening = true;
        else got.push(msg);
      }
    });
    await waitFor(() => listening, 10_000, "the Python receiver to bind");
  });

  afterAll(() => {
    receiver?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  // The helper is an optional dependency: on a machine without libsystemd-dev it is not built,
  // and this test has nothing to talk to. CI installs libsystemd-dev (.ci/run), so there it must
  // run (and fails if the helper did not build).
  it.runIf(sdNotifyBuilt() || process.env.CI)(
    "READY, STATUS, WATCHDOG pings and STOPPING arrive from the agent's own PID",
    async () => {
      const child = spawn(process.execPath, ["--input-type=module", "-e", childJs], {
        env: {
          ...process.env,
          NOTIFY_SOCKET: join(dir, "notify.sock"),
          WATCHDOG_USEC: "200000", // pings every 100 ms
        },
        stdio: ["pipe", "inherit", "inherit"],
      });
      const exited = new Promise<number | null>((r) => child.on("exit", r));
      await waitFor(
        () => got.filter((m) => m.state === "WATCHDOG=1").length >= 2,
        15_000,
        "two watchdog pings",
      );
      child.stdin.write("stop\n");
      expect(await exited).toBe(0);
      await waitFor(() => got.some((m) => m.state.startsWith("STOPPING=1")), 5_000, "STOPPING=1");

      expect(got[0]!.state).toBe("READY=1\nSTATUS=store open, uplink connecting");
      expect(got[1]!.state).toBe("STATUS=uplink connected");
      expect(got.at(-1)!.state).toBe("STOPPING=1\nSTATUS=flushing the store");
      expect(got.slice(2, -1).every((m) => m.state === "WATCHDOG=1")).toBe(true);
      // Every datagram comes from the main PID itself (NotifyAccess=main would accept them).
      expect(new Set(got.map((m) => m.pid))).toEqual(new Set([child.pid]));
    },
  );
  it.runIf(sdNotifyBuilt() || process.env.CI)(
    "the daemon (eclor-edge run) is READY with its broker down, pings, reports status, stops cleanly",
    async () => {
      got.length = 0;
      const port = await freePort(); // nobody listens: the uplink stays down
      const config = join(dir, "config.yaml");
      writeFileSync(
        config,
        [
          "version: 1",
          "gateway: { id: notify-test }",
          `state_dir: ${join(dir, "state")}`,
          `uplink: { url: "mqtt://127.0.0.1:${port}", reconnect_min_ms: 1000 }`,
          `control: { socket: ${join(dir, "control.sock")} }`,
          "log: { level: warn }",
        ].join("\n"),
      );
      const daemon = spawn(process.execPath, [mainJs, "run", "--config", config], {
        env: { ...process.env, NOTIFY_SOCKET: join(dir, "notify.sock"), WATCHDOG_USEC: "400000" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      daemon.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => daemon.on("exit", r));
      try {
        await waitFor(() => got.some((m) => m.state === "READY=1"), 20_000, "READY=1");
        await waitFor(
          () => got.filter((m) => m.state === "WATCHDOG=1").length >= 2,
          10_000,
          "watchdog pings after READY",
        );
        const status = got.find((m) => m.state.startsWith("STATUS="));
        // The health model's verdict follows (agent/health/): a broker down only degrades.
        expect(status?.state).toMatch(
          /^STATUS=uplink DOWN, backlog \d+, 0 drivers; DEGRADED: the uplink is not connected/,
        );
        daemon.kill("SIGTERM");
        expect(await exited).toBe(0);
      } finally {
        daemon.kill("SIGKILL");
      }
      await waitFor(() => got.some((m) => m.state === "STOPPING=1"), 5_000, "STOPPING=1");
      expect(got.findIndex((m) => m.state === "READY=1")).toBeLessThan(
        got.findIndex((m) => m.state === "STOPPING=1"),
      );
      expect(new Set(got.map((m) => m.pid))).toEqual(new Set([daemon.pid]));
      expect(stderr).toBe("");
    },
  );
});
