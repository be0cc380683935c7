/**
 * Client of the control API, used by the CLI. Connection failures become one-line EdgeErrors a
 * technician can act on: the agent is not running (no socket, or nobody listening), or the user
 * may not use the socket (permission denied). Protocol: see protocol.ts.
 */
import { type Socket, connect } from "node:net";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import {
  type ControlRequest,
  type ServerFrame,
  LineSplitter,
  encodeFrame,
  fromWireError,
} from "./protocol.js";

export const NOT_RUNNING_HINT = "start it with `systemctl start eclor-edge`";

export function agentNotRunning(socket: string, direct: boolean): EdgeError {
  return new EdgeError(
    ErrorCode.AgentNotRunning,
    `the agent is not running — ${NOT_RUNNING_HINT}${direct ? ", or use --direct" : ""}`,
    { socket },
  );
}

export function socketPermissionDenied(socket: string): EdgeError {
  return new EdgeError(
    ErrorCode.ControlPermission,
    `permission denied on the control socket ${socket} — run with sudo, or add your user to the eclor-edge group (sudo usermod -aG eclor-edge $USER) and log in again`,
    { socket },
  );
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onData?: (d: unknown) => void;
}

export interface ConnectOptions {
  /** Mention `--direct` in the "not running" message (commands that have it). */
  direct?: boolean;
  timeoutMs?: number;
}

export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError?: Error;

  private constructor(
    private readonly sock: Socket,
    readonly path: string,
  ) {
    sock.setEncoding("utf8");
    const splitter = new LineSplitter(
      (line) => this.onLine(line),
      () => this.failAll(new EdgeError(ErrorCode.CommandFailed, "the agent sent a line too long")),
    );
    sock.on("data", (c: string) => splitter.push(c));
    sock.on("error", (e) => this.failAll(e));
    sock.on("close", () =>
      this.failAll(
        new EdgeError(
          ErrorCode.AgentNotRunning,
          "the agent closed the control connection (did it stop?)",
        ),
      ),
    );
  }

  static connect(path: string, opts: ConnectOptions = {}): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(
          new EdgeError(
            ErrorCode.AgentNotRunning,
            `the agent does not answer on ${path} (busy or hung?) — check \`systemctl status eclor-edge\``,
            { socket: path },
          ),
        );
      }, opts.timeoutMs ?? 5000);
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.removeAllListeners("error");
        resolve(new ControlClient(sock, path));
      });
      sock.once("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e.code === "EACCES" || e.code === "EPERM") reject(socketPermissionDenied(path));
        else if (e.code === "ENOENT" || e.code === "ECONNREFUSED" || e.code === "ENOTSOCK")
          reject(agentNotRunning(path, opts.direct ?? false));
        else
          reject(
            new EdgeError(
              ErrorCode.AgentNotRunning,
              `cannot reach the agent on ${path}: ${e.message}`,
              { socket: path },
            ),
          );
      });
    });
  }

  /** One request, one result. Errors from the agent are rethrown as EdgeErrors with their code. */
  call<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T> {
    return this.request(method, params) as Promise<T>;
  }

  /**
   * A streaming request: `onData` gets each data frame. `done` resolves with the final result of
   * a finite stream; `cancel()` ends an endless one (and resolves `done`).
   */
  stream<T = unknown>(
    method: string,
    params: Record<string, unknown> | undefined,
    onData: (d: T) => void,
  ): { id: number; done: Promise<unknown>; cancel(): Promise<void> } {
    const id = this.nextId;
    const done = this.request(method, params, onData as (d: unknown) => void);
    return {
      id,
      done,
      cancel: async () => {
        if (!this.pending.has(id)) return;
        await this.request("cancel", { id });
      },
    };
  }

  close(): void {
    this.closedError = new EdgeError(ErrorCode.CommandFailed, "control connection closed");
    this.sock.end();
    this.sock.destroy();
  }

  private request(
    method: string,
    params?: Record<string, unknown>,
    onData?: (d: unknown) => void,
  ): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const req: ControlRequest = { id, method, ...(params ? { params } : {}) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(onData ? { onData } : {}) });
      this.sock.write(encodeFrame(req));
    });
  }

  private onLine(line: string): void {
    let f: ServerFrame;
    try {
      f = JSON.parse(line) as ServerFrame;
    } catch {
      this.failAll(
        new EdgeError(ErrorCode.CommandFailed, "the agent sent invalid JSON on the control socket"),
      );
      return;
    }
    if (f.id === null) {
      if ("ok" in f && !f.ok) this.failAll(fromWireError(f.error));
      return;
    }
    const p = this.pending.get(f.id);
    if (!p) return;
    if ("data" in f) {
      p.onData?.(f.data);
      return;
    }
    this.pending.delete(f.id);
    if (f.ok) p.resolve(f.result);
    else p.reject(fromWireError(f.error));
  }

  private failAll(e: Error): void {
    this.closedError ??= e;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(this.closedError);
    }
  }
}
