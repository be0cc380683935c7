/**
 * The daemon as installers run it (`eclor-edge run`, the built dist/agent/main.js) and the
 * technician CLI against it, for the health tests; plus a stand-in for systemd's notify socket
 * that also plays systemd's watchdog: it reports `expired` when no WATCHDOG=1 arrived within
 * WATCHDOG_USEC of the previous one (systemd.service(5) WatchdogSec=), so the tests wait for
 * that condition instead of timing silences themselves.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "../helpers/ports.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
export const mainJs = join(root, "dist", "agent", "main.js");

export type { Run };

export function cli(args: string[], socket: string): Promise<Run> {
  return runCli(args, { socket });
}

export class Daemon {
  log = "";
  readonly exited: Promise<number | null>;
  private constructor(readonly proc: ChildProcess) {
    proc.stderr!.on("data", (d: Buffer) => (this.log += d.toString()));
    proc.stdout!.on("data", (d: Buffer) => (this.log += d.toString()));
    this.exited = new Promise((r) => proc.on("exit", r));
  }

  static start(config: string, opts: { env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}) {
    return new Daemon(
      spawn(process.execPath, [...(opts.nodeArgs ?? []), mainJs, "run", "--config", config], {
        env: { ...process.env, NO_COLOR: "1", ...opts.env },
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGKILL");
    await this.exited;
  }
}

const receiverPy = `
import json, select, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
timeout = int(sys.argv[2]) / 1e6
print(json.dumps({"listening": True}), flush=True)
last = None
while True:
    wait = None if last is None else max(0.0, last + timeout - time.monotonic())
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        print(json.dumps({"expired": True}), flush=True)
        last = None
        continue
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    state = data.decode()
    if "WATCHDOG=1" in state.split("\\n"):
        last = time.monotonic()
    print(json.dumps({"pid": pid, "state": state}), flush=True)
`;
import { cli as runCli, type Run } from "../helpers/run.js";

/** A real AF_UNIX datagram receiver (Debian's Python), as systemd's notify socket. */
export class NotifyReceiver {
  readonly got: { pid: number | null; state: string }[] = [];
  /** Index in `got` at which the watchdog expired (systemd would restart the service). */
  readonly expiries: number[] = [];
  private constructor(private readonly proc: ChildProcess) {}

  static async start(path: string, watchdogUsec: number): Promise<NotifyReceiver> {
    const proc = spawn("/usr/bin/python3", ["-c", receiverPy, path, String(watchdogUsec)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const r = new NotifyReceiver(proc);
    let buf = "";
    let listening = false;
    proc.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, i)) as {
          listening?: boolean;
          expired?: boolean;
          pid: number | null;
          state: string;
        };
        buf = buf.slice(i + 1);
        if (msg.listening) listening = true;
        else if (msg.expired) r.expiries.push(r.got.length);
        else r.got.push({ pid: msg.pid, state: msg.state });
      }
    });
    await waitFor(() => listening, 10_000, "the Python receiver to bind");
    return r;
  }

  pings(from = 0): number {
    return this.got.slice(from).filter((m) => m.state === "WATCHDOG=1").length;
  }

  stop(): void {
    this.proc.kill();
  }
}

export function sdNotifyBuilt(): boolean {
  try {
    createRequire(import.meta.url)("sd-notify");
    return true;
  } catch {
    return false;
  }
}
