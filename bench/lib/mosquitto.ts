/**
 * A private Mosquitto for benchmarks (same recipe as test/helpers/mosquitto.ts, which is not
 * compiled into dist/). Helpers live in bench/lib/ so bench/run.js does not run them as benches.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port")),
      );
    });
  });
}

export class BenchBroker {
  private constructor(
    private readonly proc: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<BenchBroker> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "eclor-bench-mosq-"));
    const conf = join(dir, "mosquitto.conf");
    writeFileSync(
      conf,
      // max_queued_messages 0: the counting subscriber must see every message even when a
      // reference publisher sends 2,000 QoS 1 messages at once; the default queue of 1,000 per
      // client drops the excess silently and the count never completes
      // (https://mosquitto.org/man/mosquitto-conf-5.html, max_queued_messages).
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\n`,
    );
    const proc = spawn("mosquitto", ["-c", conf], { stdio: ["ignore", "ignore", "inherit"] });
    const end = Date.now() + 10_000;
    for (;;) {
      const ok = await new Promise<boolean>((r) => {
        const s = connect(port, "127.0.0.1");
        s.once("connect", () => (s.destroy(), r(true)));
        s.once("error", () => r(false));
      });
      if (ok) break;
      if (Date.now() > end || proc.exitCode !== null)
        throw new Error("mosquitto did not start (is it installed?)");
      await new Promise((r) => setTimeout(r, 50));
    }
    return new BenchBroker(proc, port, dir);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      await new Promise<void>((r) => {
        this.proc.once("exit", () => r());
        this.proc.kill("SIGTERM");
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
