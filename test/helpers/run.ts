/**
 * One way for the tests to run a process and collect what it printed (the CLI, Debian tools,
 * peers). Environment, uid and stdin are the caller's; nothing here waits for a fixed time.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this uid (and the same gid). */
  uid?: number;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  /** Called with everything printed on stdout so far, after each chunk. */
  onStdout?: (stdout: string) => void;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = {
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
    };
    const child = spawn(cmd, args, spawnOpts);
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      opts.onStdout?.(stdout);
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** The compiled CLI (`npm run build` first). */
export const mainJs = fileURLToPath(new URL("../../dist/agent/main.js", import.meta.url));

/**
 * `eclor-edge ARGS` with plain output (UTC, no colours) and the control socket given: a test
 * never asks a real agent of the machine by accident (default: a socket that does not exist).
 */
export function cli(args: string[], opts: RunOptions & { socket?: string } = {}): Promise<Run> {
  const { socket, env, ...rest } = opts;
  return run(process.execPath, [mainJs, ...args], {
    ...rest,
    env: {
      ...process.env,
      TZ: "UTC",
      NO_COLOR: "1",
      ECLOR_EDGE_SOCKET: socket ?? "/nonexistent/control.sock",
      ...env,
    },
  });
}
