/**
 * A socat pty pair at fixed paths that a test can kill and start again at the same paths (the
 * shared PtyPair helper makes a new directory each time). Used by the TIC and M-Bus tests to
 * pull the "USB converter" out and plug it back.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../helpers/ports.js";

export class FixedPtyPair {
  readonly dir = mkdtempSync(join(tmpdir(), "eclor-fpty-"));
  readonly a = join(this.dir, "ttyA");
  readonly b = join(this.dir, "ttyB");
  private proc: ChildProcess | undefined;

  static async open(): Promise<FixedPtyPair> {
    const p = new FixedPtyPair();
    await p.up();
    return p;
  }

  async up(): Promise<void> {
    this.proc = spawn(
      "socat",
      ["-d", "-d", `pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`],
      { stdio: "ignore" },
    );
    await waitFor(() => existsSync(this.a) && existsSync(this.b), 5000, "socat ptys");
  }

  /** Kill socat: both ends vanish, like an unplugged USB adapter. */
  async down(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p && p.exitCode === null) {
      await new Promise<void>((resolve) => {
        p.once("exit", () => resolve());
        p.kill("SIGTERM");
      });
    }
    await waitFor(() => !existsSync(this.a) && !existsSync(this.b), 5000, "socat links removed");
  }

  async close(): Promise<void> {
    await this.down().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A DriverContext that records everything, with a silent logger. */
export async function recordingContext() {
  const { pino } = await import("pino");
  const readings: import("../../drivers/driver.js").Reading[] = [];
  const events: import("../../drivers/driver.js").DriverEvent[] = [];
  const kv = new Map<string, unknown>();
  const ctx: import("../../drivers/driver.js").DriverContext = {
    logger: pino({ level: process.env.ECLOR_TEST_LOG ?? "silent" }),
    emit: (r) => readings.push(...r),
    event: (e) => events.push(e),
    state: {
      get: <T>(k: string) => kv.get(k) as T | undefined,
      set: (k, v) => void kv.set(k, v),
      delete: (k) => void kv.delete(k),
      keys: (prefix = "") => [...kv.keys()].filter((k) => k.startsWith(prefix)),
    },
  };
  return { ctx, readings, events };
}

/** waitFor that, on a timeout, adds the driver's status to the error (flaky-test forensics). */
export async function waitOr<T>(
  cond: () => T,
  ms: number,
  what: string,
  state: () => unknown,
): Promise<NonNullable<T>> {
  const { waitFor: wf } = await import("../helpers/ports.js");
  try {
    return await wf(cond, ms, what);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nstate: ${JSON.stringify(state())}`, { cause: e });
  }
}
