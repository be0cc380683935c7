/**
 * The control API server: a Unix socket in the running agent that the technician CLI talks to,
 * so the CLI never opens a serial bus the agent already owns. The socket is created with mode
 * 0660 (root and the service group only: it can write to devices, through the command router).
 * Protocol: see protocol.ts.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import { type Server, type Socket, connect, createServer } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { EdgeError, ErrorCode, describeError } from "../../core/errors.js";
import type { ControlBackend } from "./backend.js";
import { type Stream, streaming, unary } from "./handlers.js";
import { peerOf, peerWho } from "./peer.js";
import {
  type ServerFrame,
  LineSplitter,
  MAX_CONNECTIONS,
  MAX_QUEUED_OUTPUT,
  MAX_REQUESTS_PER_CONNECTION,
  encodeFrame,
  parseRequest,
  toWireError,
} from "./protocol.js";

export const SOCKET_MODE = 0o660;

interface OpenStream {
  open: boolean;
  closers: (() => void)[];
}

interface Connection {
  /** The peer, resolved once per connection (peer.ts). */
  who: Promise<`local:${string}`>;
  send: (f: ServerFrame) => Promise<void>;
  streams: Map<number, OpenStream>;
  closeStream: (id: number) => boolean;
  queued: () => number;
}

export class ControlServer {
  private server?: Server;
  private path?: string;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly backend: ControlBackend,
    private readonly logger?: Logger,
  ) {}

  /**
   * Listen on `path`. A stale socket file left by a crashed agent is replaced; a live one (another
   * agent answers on it) is an error rather than stealing the socket from it.
   */
  async listen(path: string): Promise<void> {
    // The socket's directory must let the service group through (issue 14.7): 0750 whatever
    // the umask when we create it (systemd's RuntimeDirectory= does the same in production).
    const dir = dirname(path);
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o750 });
      chmodSync(dir, 0o750);
    }
    if (existsSync(path)) {
      if (await isAlive(path)) {
        throw new EdgeError(
          ErrorCode.DriverStart,
          `another agent is already listening on ${path}; stop it first (systemctl stop eclor-edge)`,
          { socket: path },
        );
      }
      unlinkSync(path);
    }
    const server = createServer((sock) => this.accept(sock));
    // Create the socket file without "other" bits from the first instant (no window where any
    // local user could connect before chmod), then set the exact mode. The umask is process-wide:
    // restore it right after listen() (a Unix socket is bound synchronously), not after the
    // callback. Worker threads cannot change it: there, chmod alone closes the window quickly.
    let old: number | undefined;
    try {
      old = process.umask(0o117);
    } catch {
      old = undefined;
    }
    const listening = new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      try {
        server.listen(path, () => {
          server.off("error", reject);
          resolve();
        });
      } finally {
        if (old !== undefined) process.umask(old);
      }
    });
    await listening;
    chmodSync(path, SOCKET_MODE);
    server.on("error", (err) => this.logger?.error({ err }, "control socket error"));
    this.server = server;
    this.path = path;
    this.logger?.info({ socket: path }, "control API listening");
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // net.Server removes its socket file on close; make sure of it for the next start.
    if (this.path && existsSync(this.path)) {
      try {
        unlinkSync(this.path);
      } catch {
        // Already gone or not ours to remove: nothing to do.
      }
    }
  }

  private accept(sock: Socket): void {
    if (this.sockets.size >= MAX_CONNECTIONS) {
      // Bounded (issue 14.3): one plain answer, then the door closes.
      sock.end(
        encodeFrame({
          id: null,
          ok: false,
          error: toWireError(
            new EdgeError(
              ErrorCode.CommandBusy,
              `the agent already serves ${MAX_CONNECTIONS} control connections — retry later`,
            ),
          ),
        }),
      );
      sock.on("error", () => sock.destroy());
      return;
    }
    this.sockets.add(sock);
    sock.setEncoding("utf8");
    let inFlight = 0;
    const who = peerOf(sock).then(peerWho, () => peerWho({}));
    const streams = new Map<number, OpenStream>();
    const send = (frame: ServerFrame): Promise<void> => {
      if (sock.destroyed) return Promise.resolve();
      if (sock.write(encodeFrame(frame))) return Promise.resolve();
      // A client that writes requests without reading answers is not read any further until
      // it catches up: its answers cannot pile up in memory.
      if (sock.writableLength > MAX_QUEUED_OUTPUT && !sock.isPaused()) {
        sock.pause();
        sock.once("drain", () => sock.resume());
      }
      return new Promise((resolve) => {
        const done = () => {
          sock.off("drain", done);
          sock.off("close", done);
          resolve();
        };
        sock.once("drain", done);
        sock.once("close", done);
      });
    };
    const closeStream = (id: number) => {
      const st = streams.get(id);
      if (!st) return false;
      streams.delete(id);
      st.open = false;
      for (const fn of st.closers) fn();
      return true;
    };
    const splitter = new LineSplitter(
      (line) => {
        if (inFlight >= MAX_REQUESTS_PER_CONNECTION) {
          void send({
            id: requestId(line),
            ok: false,
            error: toWireError(
              new EdgeError(
                ErrorCode.CommandBusy,
                `${MAX_REQUESTS_PER_CONNECTION} requests of this connection are already running — wait for their answers`,
              ),
            ),
          });
          return;
        }
        inFlight++;
        void this.handle(line, {
          who,
          send,
          streams,
          closeStream,
          queued: () => sock.writableLength,
        }).finally(() => inFlight--);
      },
      () => {
        void send({
          id: null,
          ok: false,
          error: toWireError(new EdgeError(ErrorCode.UsageError, "request line too long")),
        });
        sock.end();
      },
    );
    sock.on("data", (chunk: string) => splitter.push(chunk));
    sock.on("error", () => sock.destroy());
    sock.on("close", () => {
      this.sockets.delete(sock);
      for (const id of [...streams.keys()]) closeStream(id);
    });
  }

  private async handle(line: string, conn: Connection): Promise<void> {
    const { send, streams, closeStream } = conn;
    let id: number | null = null;
    let method = "";
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new EdgeError(ErrorCode.UsageError, "request is not valid JSON");
      }
      const req = parseRequest(parsed);
      id = req.id;
      method = req.method;
      if (req.method === "cancel") {
        const target = req.params?.id;
        const cancelled = typeof target === "number" && streams.has(target);
        if (cancelled) {
          closeStream(target);
          await send({ id: target, ok: true, result: { cancelled: true } });
        }
        await send({ id: req.id, ok: true, result: { cancelled } });
        return;
      }
      const u = unary[req.method];
      if (u) {
        const result = await u(this.backend, req.params, { who: await conn.who });
        await send({ id: req.id, ok: true, result });
        return;
      }
      const s = streaming[req.method];
      if (!s) {
        throw new EdgeError(ErrorCode.CommandUnknown, `unknown control method "${req.method}"`, {
          method: req.method,
        });
      }
      if (streams.has(req.id))
        throw new EdgeError(ErrorCode.UsageError, `request id ${req.id} is already streaming`);
      const st: OpenStream = { open: true, closers: [] };
      streams.set(req.id, st);
      const reqId = req.id;
      const stream: Stream = {
        send: (data) => (st.open ? send({ id: reqId, data }) : Promise.resolve()),
        get open() {
          return st.open;
        },
        get queued() {
          return conn.queued();
        },
        onClose: (fn) => {
          if (st.open) st.closers.push(fn);
          else fn();
        },
      };
      try {
        const result = await s(this.backend, req.params, stream);
        if (st.open) await send({ id: reqId, ok: true, result });
      } finally {
        closeStream(reqId);
      }
    } catch (e) {
      if (!(e instanceof EdgeError))
        this.logger?.warn({ err: e }, `control request failed: ${describeError(e)}`);
      // Device commands refused here (before the command service, which audits its own) are
      // audited too, with the peer (issue 14.6).
      // (A write's other refusals come from the service, already audited.)
      else if (
        (method === "read" &&
          (e.code === ErrorCode.DeviceUnknown ||
            e.code === ErrorCode.PointUnknown ||
            e.code === ErrorCode.UsageError)) ||
        (method === "write" && e.code === ErrorCode.UsageError)
      )
        this.backend.auditRefusal?.(method, await conn.who, e);
      await send({ id, ok: false, error: toWireError(e) });
    }
  }
}

/** Does a live process accept connections on this socket? */
function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** The id of a request line, to answer it when it is refused unparsed; null if there is none. */
function requestId(line: string): number | null {
  try {
    const id = (JSON.parse(line) as { id?: unknown } | null)?.id;
    return typeof id === "number" && Number.isSafeInteger(id) ? id : null;
  } catch {
    return null;
  }
}
