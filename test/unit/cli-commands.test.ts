/**
 * The technician commands as a technician runs them: the built CLI (dist/agent/main.js) spawned
 * against a real control socket served in this process by an in-memory backend. Human output is
 * checked for the lines a technician reads; --json output is parsed; exit codes 0/1/2.
 * (test/integration/cli-agent.test.ts runs the same commands against the real agent.)
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlServer } from "../../agent/control/server.js";
import { waitFor } from "../helpers/ports.js";
import { FakeBackend, NOW } from "./cli-fixtures.js";
import { cli as runCli, type Run } from "../helpers/run.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const main = join(root, "dist", "agent", "main.js");
const dir = mkdtempSync(join(tmpdir(), "eclor-cli-"));
const sock = join(dir, "control.sock");
const backend = new FakeBackend();
const server = new ControlServer(backend);

function cli(
  args: string[],
  opts: {
    env?: Record<string, string>;
    input?: string;
    onStdout?: (s: string) => void;
    uid?: number;
  } = {},
): Promise<Run> {
  return runCli(args, { socket: sock, input: "", ...opts });
}

const json = (r: Run) => JSON.parse(r.stdout) as Record<string, unknown>;

beforeAll(async () => {
  await server.listen(sock);
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("status", () => {
  it("prints uplink, store, drivers and devices in words", async () => {
    const r = await cli(["status"]);
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain("Health   OK");
    expect(out).toContain("Gateway  gw-test (Test) · agent 0.1.0 · pid 4242 · up 1 h");
    expect(out).toContain(
      "Uplink   DISCONNECTED from mqtt://127.0.0.1:1 · last publish 2 min ago · backlog 17 (oldest 1 min 30 s ago)",
    );
    expect(out).toContain("last error: connection refused");
    expect(out).toContain("Store    /tmp/store.db · 5.0 MiB of 512 MiB · 17 unsent");
    expect(out).toContain("bus1 (modbus) running — connected to 127.0.0.1:5020");
    expect(out).toMatch(
      /meter-2\s+OFFLINE\s+10 min ago\s+12\s+timeout: no answer from unit 2 \(5 s ago\)/,
    );
    expect(out).not.toContain("\u001b[");
  });

  it("--json returns the status object", async () => {
    const r = await cli(["status", "--json"]);
    expect(r.code).toBe(0);
    expect(json(r)).toMatchObject({
      gateway: { id: "gw-test" },
      uplink: { connected: false, backlog: 17 },
      drivers: [{ id: "bus1" }],
    });
  });

  it("exits 1 when degraded, with the reason in words (the container HEALTHCHECK)", async () => {
    backend.health = {
      status: "degraded",
      reasons: [
        {
          component: "driver",
          driver: "lora",
          severity: "degraded",
          message: 'driver "lora" (lorawan) failed: EE0401 codec "am103" cannot be read',
        },
      ],
    };
    try {
      const [r, j] = await Promise.all([cli(["status"]), cli(["status", "--json"])]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain("Health   DEGRADED");
      expect(r.stdout).toContain(
        'driver "lora" (lorawan) failed: EE0401 codec "am103" cannot be read',
      );
      expect(j.code).toBe(1);
      expect(json(j)).toMatchObject({ status: "degraded", reasons: [{ driver: "lora" }] });
    } finally {
      backend.health = { status: "ok", reasons: [] };
    }
  });

  it("colours only on a TTY: never when piped, even without NO_COLOR", async () => {
    const r = await cli(["status"], { env: { NO_COLOR: "" } });
    expect(r.stdout).not.toContain("\u001b[");
  });
});

describe("devices, read, write", () => {
  it("lists devices with latest values, units, quality and access", async () => {
    const r = await cli(["devices"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("lamp-1  modbus on bus1 · Lampadaire place de la Mairie · online");
    expect(r.stdout).toMatch(/energy\s+1119\.9 kWh\s+good\s+\S.* ago\s+r\n/);
    expect(r.stdout).toMatch(/dim\s+—\s+no value yet\s+rw/);
    const j = await cli(["devices", "meter-2", "--json"]);
    expect(json(j)).toMatchObject({
      devices: [
        { id: "meter-2", status: { online: false }, values: [{ point: "energy", value: 1119.9 }] },
      ],
    });
  });

  it("unknown device: one line, exit 2, no stack trace; --json error object", async () => {
    const r = await cli(["devices", "lamp-9"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: EE0406 unknown device "lamp-9" (known: lamp-1, meter-2) — see `eclor-edge devices`\n',
    );
    const j = await cli(["read", "lamp-9", "--json"]);
    expect(j.code).toBe(2);
    expect(json(j)).toMatchObject({ ok: false, error: { code: "DeviceUnknown", ecode: 406 } });
  });

  it("read: values with units; a device that does not answer exits 1 with the reason", async () => {
    const ok = await cli(["read", "lamp-1", "dim", "on"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/dim\s+42\.5 %\s+good/);
    expect(ok.stdout).toMatch(/on\s+true\s+good/);
    const bad = await cli(["read", "meter-2"]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/energy\s+—\s+timeout: no answer from unit 2 after 1000 ms/);
    const j = await cli(["read", "meter-2", "--json"]);
    expect(j.code).toBe(1);
    expect(json(j)).toMatchObject({
      ok: false,
      device: "meter-2",
      readings: [{ quality: "timeout", value: null }],
    });
  });

  it("write: ok with read-back; out of range is bad input (exit 2) and writes nothing", async () => {
    const before = backend.writes.length;
    const ok = await cli(["write", "lamp-1", "dim", "40", "--id", "cli-test-1"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("ok lamp-1/dim ← 40 · read back 40");
    expect(backend.writes.at(-1)).toEqual({
      device: "lamp-1",
      point: "dim",
      value: 40,
      commandId: "cli-test-1",
      // The peer uid from the socket (issue 14.6): this test process's own.
      who: `local:uid=${process.getuid!()}`,
    });
    const bad = await cli(["write", "lamp-1", "dim", "140"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("error: EE0502 lamp-1/dim: value 140 out of range 0..100\n");
    const j = await cli(["write", "lamp-1", "power", "1", "--json"]);
    expect(j.code).toBe(2);
    expect(json(j)).toMatchObject({ ok: false, error: { code: "CommandRefused" } });
    expect(backend.writes.length).toBe(before + 1);
  });
});

describe("tail", () => {
  it("prints items as they are stored, filtered by device, and stops after --count", async () => {
    const publish = () => {
      backend.publish({
        kind: "reading",
        reading: {
          device: "meter-2",
          point: "energy",
          ts: NOW,
          value: 5,
          unit: "kWh",
          quality: "good",
        },
      });
      backend.publish({
        kind: "reading",
        reading: {
          device: "lamp-1",
          point: "power",
          ts: NOW,
          value: 87,
          unit: "W",
          quality: "good",
          seq: 3,
        },
      });
      backend.publish({
        kind: "event",
        event: {
          ts: NOW + 1,
          type: "device_offline",
          severity: "warning",
          device: "lamp-1",
          message: "no answer for 30 s",
        },
      });
    };
    const p = cli(["tail", "--device", "lamp-1", "--events", "--count", "2"]);
    await waitFor(() => backend.hub.listenerCount("item") > 0, 5000, "tail subscription");
    publish();
    const r = await p;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "12:00:00.000  lamp-1/power  87 W\n12:00:00.001  event WARN  device_offline lamp-1: no answer for 30 s\n",
    );
    const pj = cli(["tail", "--json", "--count", "1"]);
    await waitFor(() => backend.hub.listenerCount("item") > 0, 5000, "tail subscription");
    publish();
    const j = await pj;
    expect(JSON.parse(j.stdout)).toMatchObject({
      kind: "reading",
      reading: { device: "meter-2", value: 5 },
    });
    await waitFor(() => backend.hub.listenerCount("item") === 0, 5000, "unsubscribe");
  });

  it("refuses a bad --count as bad input", async () => {
    const r = await cli(["tail", "--count", "many"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--count: expected a positive integer, got "many"');
  });
});

describe("buffer", () => {
  it("stats in words and --json", async () => {
    const r = await cli(["buffer", "stats"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^unsent {5}17 \(oldest 2026-11-25 11:58:30, .* ago\)$/m);
    expect(json(await cli(["buffer", "stats", "--json"]))).toMatchObject({
      history: 1201,
      lastSeq: 1201,
    });
  });

  it("exports a range as JSON Lines and as CSV with RFC 4180 quoting", async () => {
    const from = new Date(NOW - 10_000).toISOString();
    const r = await cli(["buffer", "export", "--device", "meter-2", "--from", from]);
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { seq: number });
    expect(rows.map((x) => x.seq)).toEqual([
      1191, 1192, 1193, 1194, 1195, 1196, 1197, 1198, 1199, 1200,
    ]);
    const file = join(dir, "out.csv");
    const c = await cli(["buffer", "export", "--device", "lamp-1", "--format", "csv", "-o", file]);
    expect(c.code).toBe(0);
    expect(c.stderr).toBe(`1 reading(s) written to ${file}\n`);
    expect(readFileSync(file, "utf8")).toBe(
      `seq,ts,time,device,point,value,unit,quality,detail\n1201,${NOW - 500},2026-11-25T11:59:59.500Z,lamp-1,power,"odd ""text"", here",,good,\n`,
    );
  });

  it("refuses bad times and formats naming the option", async () => {
    const a = await cli(["buffer", "export", "--from", "yesterday"]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain(
      '--from: expected a date/time like 2026-11-25T08:00, epoch ms, or an age like 2h or 7d; got "yesterday"',
    );
    const b = await cli(["buffer", "export", "--format", "xml"]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--format: expected jsonl or csv, got "xml"');
  });

  it("purge refuses without confirmation when not on a terminal, then purges with --yes", async () => {
    const n = backend.stored.length;
    const r = await cli(["buffer", "purge"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "refusing to purge without confirmation: run in a terminal, or add --yes",
    );
    expect(backend.stored.length).toBe(n);
    const y = await cli(["buffer", "purge", "--yes", "--before", String(NOW - 100_000), "--json"]);
    expect(y.code).toBe(0);
    expect(json(y)).toEqual({ deleted: 1100 });
  });
});

describe("logs", () => {
  it("pretty-prints recent lines; --json passes them raw", async () => {
    backend.logs.write(
      `${JSON.stringify({ level: 50, time: NOW, component: "uplink", msg: "broker refused the connection" })}\n`,
    );
    const r = await cli(["logs", "-n", "1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^\[2026-11-25 12:00:00\.000\] ERROR: broker refused the connection \{"component":"uplink"\}\n$/,
    );
    const j = await cli(["logs", "-n", "1", "--json"]);
    expect(JSON.parse(j.stdout)).toMatchObject({ msg: "broker refused the connection" });
  });
});

describe("agent not reachable", () => {
  it("agent stopped: one line with the fix, exit 1, no stack trace", async () => {
    const r = await cli(["status"], { env: { ECLOR_EDGE_SOCKET: join(dir, "gone.sock") } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "error: EE0602 the agent is not running — start it with `systemctl start eclor-edge`\n",
    );
    const j = await cli(["devices", "--json", "--socket", join(dir, "gone.sock")]);
    expect(j.code).toBe(1);
    expect(json(j)).toMatchObject({ ok: false, error: { code: "AgentNotRunning" } });
  });

  it("finds the socket in the config file given with --config", async () => {
    const cfg = join(dir, "config.yaml");
    writeFileSync(cfg, `version: 1\ncontrol:\n  socket: ${join(dir, "elsewhere.sock")}\n`);
    const r = await cli(["status", "--config", cfg], { env: { ECLOR_EDGE_SOCKET: "" } });
    expect(r.stderr).toContain("the agent is not running");
    const ok = await cli(["status", "--json", "--config", cfg, "--socket", sock]);
    expect(ok.code).toBe(0);
  });

  it("socket permission denied gets its own message", async () => {
    const isRoot = process.getuid?.() === 0;
    // Root ignores file modes: run the CLI as nobody (65534). Otherwise take our own write bit away.
    const restricted = join(dir, "restricted");
    const other = new ControlServer(backend);
    await other.listen(join(restricted, "control.sock"));
    chmodSync(dir, 0o755);
    chmodSync(restricted, 0o755);
    if (!isRoot) chmodSync(join(restricted, "control.sock"), 0o000);
    try {
      const r = await cli(
        ["status", "--socket", join(restricted, "control.sock")],
        isRoot ? { uid: 65534 } : {},
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `error: EE0603 permission denied on the control socket ${join(restricted, "control.sock")} — run with sudo, or add your user to the eclor-edge group (sudo usermod -aG eclor-edge $USER) and log in again\n`,
      );
    } finally {
      await other.close();
    }
  });
});

describe("help and completion", () => {
  it("every technician command has --help", async () => {
    const cmds = [
      ["status"],
      ["devices"],
      ["read"],
      ["write"],
      ["tail"],
      ["buffer", "stats"],
      ["buffer", "export"],
      ["buffer", "purge"],
      ["logs"],
      ["completion"],
      ["serial", "list"],
      ["modbus", "read"],
      ["modbus", "write"],
      ["modbus", "scan"],
      ["tic", "sniff"],
    ];
    const runs = await Promise.all(cmds.map((c) => cli([...c, "--help"])));
    runs.forEach((r, i) => {
      expect(r.code, cmds[i]!.join(" ")).toBe(0);
      expect(r.stdout).toContain(`Usage: eclor-edge ${cmds[i]!.join(" ")}`);
    });
  });

  it("bash completion completes commands, options, device and point ids", async () => {
    const script = await cli(["completion", "bash"]);
    expect(script.code).toBe(0);
    const bin = join(dir, "bin");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, "eclor-edge"),
      `#!/bin/sh\nexec "${process.execPath}" "${main}" "$@"\n`,
      { mode: 0o755 },
    );
    writeFileSync(join(dir, "completion.bash"), script.stdout);
    const complete = async (words: string[]) => {
      const line = `source ${join(dir, "completion.bash")}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _eclor_edge; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return new Promise<string[]>((resolve, reject) => {
        const child = spawn("bash", ["-c", line], {
          env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, ECLOR_EDGE_SOCKET: sock },
        });
        let out = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
        child.on("error", reject);
        child.on("close", () => resolve(out.split("\n").filter(Boolean).sort()));
      });
    };
    expect(await complete(["eclor-edge", "bu"])).toEqual(["buffer"]);
    expect(await complete(["eclor-edge", "buffer", ""])).toEqual(["export", "purge", "stats"]);
    expect(await complete(["eclor-edge", "read", ""])).toEqual(["lamp-1", "meter-2"]);
    expect(await complete(["eclor-edge", "write", "lamp-1", "d"])).toEqual(["dim"]);
    expect(await complete(["eclor-edge", "tail", "--device", "m"])).toEqual(["meter-2"]);
    expect(await complete(["eclor-edge", "tail", "--ev"])).toEqual(["--events", "--events-only"]);
    expect(await complete(["eclor-edge", "completion", ""])).toEqual([]);
  });
});
