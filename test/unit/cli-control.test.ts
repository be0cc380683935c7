/**
 * The control protocol end to end over a real Unix socket: a ControlServer on an in-memory
 * backend, the ControlClient the CLI uses, and raw socket clients for malformed input.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlClient } from "../../agent/control/client.js";
import { ControlServer } from "../../agent/control/server.js";
import { isEdgeError } from "../../core/errors.js";
import { waitFor } from "../helpers/ports.js";
import { FakeBackend, NOW } from "./cli-fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "eclor-ctl-"));
const sock = join(dir, "run", "control.sock");
const backend = new FakeBackend();
const server = new ControlServer(backend);

beforeAll(async () => {
  await server.listen(sock);
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

function rawExchange(lines: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = connect(sock);
    let buf = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      buf += d;
      const got = buf.split("\n").filter(Boolean);
      if (got.length >= lines.split("\n").filter(Boolean).length) {
        s.destroy();
        resolve(got);
      }
    });
    s.on("error", reject);
    s.write(lines);
  });
}

describe("control server", () => {
  it("creates the socket with mode 0660 in a directory it creates", () => {
    const st = statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
  });

  it("answers hello and status", async () => {
    const c = await ControlClient.connect(sock);
    try {
      const hello = await c.call<{ protocol: number; devices: string[]; methods: string[] }>(
        "hello",
      );
      expect(hello.protocol).toBe(1);
      expect(hello.devices).toEqual(["lamp-1", "meter-2"]);
      expect(hello.methods).toContain("tail");
      const st = await c.call<{ gateway: { id: string }; uplink: { backlog: number } }>("status");
      expect(st.gateway.id).toBe("gw-test");
      expect(st.uplink.backlog).toBe(17);
    } finally {
      c.close();
    }
  });

  it("reports unknown devices and points as bad input with the known names", async () => {
    const c = await ControlClient.connect(sock);
    try {
      const e = await errorOf(c.call("read", { device: "nope" }));
      expect(isEdgeError(e) && e.codeName).toBe("DeviceUnknown");
      expect(isEdgeError(e) && e.exitCode).toBe(2);
      expect(String(e)).toContain("known: lamp-1, meter-2");
      const p = await errorOf(c.call("read", { device: "lamp-1", points: ["dimm"] }));
      expect(isEdgeError(p) && p.codeName).toBe("PointUnknown");
      expect(String(p)).toContain("power, dim, on");
      const m = await errorOf(c.call("frobnicate"));
      expect(isEdgeError(m) && m.codeName).toBe("CommandUnknown");
      const t = await errorOf(c.call("read", { device: 3 }));
      expect(String(t)).toContain("params.device: expected a non-empty string");
    } finally {
      c.close();
    }
  });

  it("passes write values to the backend converted to the point's type", async () => {
    const c = await ControlClient.connect(sock);
    try {
      const r = await c.call<{ ok: boolean; value: unknown; commandId: string }>("write", {
        device: "lamp-1",
        point: "dim",
        value: "40",
      });
      expect(r.ok).toBe(true);
      expect(r.value).toBe(40);
      expect(r.commandId).toMatch(/^local-/);
      await c.call("write", { device: "lamp-1", point: "on", value: "off", commandId: "abc" });
      expect(backend.writes.at(-1)).toEqual({
        device: "lamp-1",
        point: "on",
        value: false,
        commandId: "abc",
        // The peer uid from the socket (issue 14.6): this test process's own.
        who: `local:uid=${process.getuid!()}`,
      });
      const e = await errorOf(c.call("write", { device: "lamp-1", point: "dim", value: "140" }));
      expect(isEdgeError(e) && e.codeName).toBe("CommandInvalid");
    } finally {
      c.close();
    }
  });

  it("answers malformed lines with an error and keeps the connection usable", async () => {
    const got = await rawExchange(
      'not json\n{"id":"x","method":"status"}\n[1]\n{"id":7,"method":"hello"}\n',
    );
    const frames = got.map(
      (l) => JSON.parse(l) as { id: number | null; ok: boolean; error?: { message: string } },
    );
    expect(frames[0]).toMatchObject({
      id: null,
      ok: false,
      error: { message: "request is not valid JSON" },
    });
    expect(frames[1]).toMatchObject({
      id: null,
      ok: false,
      error: { message: "request.id: expected an integer" },
    });
    expect(frames[2]).toMatchObject({
      id: null,
      ok: false,
      error: { message: "request must be a JSON object" },
    });
    expect(frames[3]).toMatchObject({ id: 7, ok: true });
  });

  it("streams tail items filtered by device until cancelled, and unsubscribes", async () => {
    const c = await ControlClient.connect(sock);
    const got: unknown[] = [];
    const s = c.stream("tail", { device: "lamp-1", events: true }, (d) => got.push(d));
    await waitFor(() => backend.hub.listenerCount("item") === 1, 2000, "subscription");
    backend.publish({
      kind: "reading",
      reading: { device: "meter-2", point: "energy", ts: NOW, value: 1, quality: "good" },
    });
    backend.publish({
      kind: "reading",
      reading: { device: "lamp-1", point: "power", ts: NOW, value: 2, quality: "good", seq: 9 },
    });
    backend.publish({
      kind: "event",
      event: {
        ts: NOW,
        type: "device_offline",
        severity: "warning",
        device: "lamp-1",
        message: "no answer",
      },
    });
    await waitFor(() => got.length === 2, 2000, "two items");
    await s.cancel();
    await expect(s.done).resolves.toEqual({ cancelled: true });
    expect(got).toMatchObject([
      { kind: "reading", reading: { device: "lamp-1", seq: 9 } },
      { kind: "event", event: { type: "device_offline" } },
    ]);
    await waitFor(() => backend.hub.listenerCount("item") === 0, 2000, "unsubscribe");
    c.close();
  });

  it("unsubscribes a tail when the client hangs up", async () => {
    const c = await ControlClient.connect(sock);
    const s = c.stream("tail", {}, () => undefined);
    s.done.catch(() => undefined);
    await waitFor(() => backend.hub.listenerCount("item") === 1, 2000, "subscription");
    c.close();
    await waitFor(() => backend.hub.listenerCount("item") === 0, 2000, "unsubscribe");
  });

  it("exports in chunks and ends with the count", async () => {
    const c = await ControlClient.connect(sock);
    const chunks: unknown[][] = [];
    const r = await c.stream<unknown[]>(
      "buffer.export",
      { device: "meter-2", from: NOW - 1000_000 },
      (d) => chunks.push(d),
    ).done;
    c.close();
    expect(r).toEqual({ count: 1000 });
    expect(chunks.map((x) => x.length)).toEqual([500, 500]);
  });

  it("serves recent log lines, then follows new ones", async () => {
    backend.logs.write('{"level":30,"time":1,"msg":"one"}\n{"level":40,"time":2,"msg":"two"}\n');
    const c = await ControlClient.connect(sock);
    const lines: { n: number; line: string }[] = [];
    const r = await c.stream<{ n: number; line: string }>("logs", { lines: 1 }, (d) =>
      lines.push(d),
    ).done;
    expect(r).toEqual({ lines: 1 });
    expect(lines.map((l) => (JSON.parse(l.line) as { msg: string }).msg)).toEqual(["two"]);
    const followed: string[] = [];
    const s = c.stream<{ line: string }>("logs", { lines: 0, follow: true }, (d) =>
      followed.push(d.line),
    );
    // Write only once the server follows the ring (the handler subscribes after the request
    // arrives); LogRing keeps its emitter private, hence the cast.
    const ring = backend.logs as unknown as { emitter: { listenerCount(e: string): number } };
    await waitFor(() => ring.emitter.listenerCount("line") === 1, 10_000, "log follower");
    backend.logs.write('{"level":30,"time":3,"msg":"three"}\n');
    await waitFor(() => followed.length === 1, 2000, "followed line");
    await s.cancel();
    c.close();
  });

  it("refuses to start on a socket another agent is serving, and replaces a stale one", async () => {
    const other = new ControlServer(backend);
    await expect(other.listen(sock)).rejects.toThrow(/already listening/);
    const stale = join(dir, "stale.sock");
    // A crashed agent leaves its socket file behind: listen in a child, then SIGKILL it.
    const child = spawn(
      process.execPath,
      [
        "-e",
        `require("net").createServer().listen(${JSON.stringify(stale)}, () => console.log("up"))`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise((r) => child.stdout.once("data", r));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    expect(statSync(stale).isSocket()).toBe(true);
    const again = new ControlServer(backend);
    await again.listen(stale);
    const c = await ControlClient.connect(stale);
    expect(await c.call<{ protocol: number }>("hello")).toMatchObject({ protocol: 1 });
    c.close();
    await again.close();
  });
});

describe("control client errors", () => {
  it("says the agent is not running when there is no socket", async () => {
    const e = await errorOf(ControlClient.connect(join(dir, "missing.sock"), { direct: true }));
    expect(isEdgeError(e) && e.codeName).toBe("AgentNotRunning");
    expect((e as Error).message).toContain(
      "the agent is not running — start it with `systemctl start eclor-edge`, or use --direct",
    );
  });

  it("says so when nobody listens on a socket file", async () => {
    const path = join(dir, "plainfile.sock");
    writeFileSync(path, "");
    const e = await errorOf(ControlClient.connect(path));
    expect(isEdgeError(e) && e.codeName).toBe("AgentNotRunning");
  });
});
