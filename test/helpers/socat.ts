/**
 * A real serial line between two processes: a socat pty pair (baud rate is not simulated).
 * `a` and `b` are symlinks to the two /dev/pts ends.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./ports.js";

export class PtyPair {
  private constructor(
    readonly a: string,
    readonly b: string,
    private readonly dir: string,
    private proc: ChildProcess,
  ) {}

  static async open(): Promise<PtyPair> {
    const dir = mkdtempSync(join(tmpdir(), "eclor-pty-"));
    const a = join(dir, "ttyA");
    const b = join(dir, "ttyB");
    const proc = spawn(
      "socat",
      ["-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`],
      { stdio: "ignore" },
    );
    await waitFor(() => existsSync(a) && existsSync(b), 5000, "socat ptys");
    return new PtyPair(a, b, dir, proc);
  }

  async close(): Promise<void> {
    if (this.proc.exitCode === null) {
      await new Promise<void>((resolve) => {
        this.proc.once("exit", () => resolve());
        this.proc.kill("SIGTERM");
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
