/**
 * Issue 14.3: every input path has a bound. Against the real daemon and a real Mosquitto: a
 * flood of `read` commands is answered busy / rate-limited beyond the bounds (not executed
 * without limit), counted in the audit, and the agent keeps serving; the control socket caps
 * connections, line length and requests in flight. (Memory under a 50k flood: bench/command-flood.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModbusSimulator } from "../../sim/modbus/index.js";
import { waitFor } from "../helpers/ports.js";
import type { Hypervisor } from "./commands-fixtures.js";
import { type Daemon, type SecurityRig, open, startSecurityRig } from "./security-daemon.js";

const GW = "gw-sec-bounds";
let rig: SecurityRig;
let sim: ModbusSimulator;
let hv: Hypervisor;
let daemon: Daemon;

beforeAll(async () => {
  rig = await startSecurityRig(GW);
  ({ sim, hv, daemon } = rig);
}, 90_000);

afterAll(async () => {
  await rig?.dispose();
});

describe("bounded input (issue 14.3)", () => {
  it("answers a flood of reads busy or rate-limited, audits it, and keeps serving", async () => {
    const before = sim.unit(3).functions.get(3) ?? 0;
    const n = 3000;
    for (let i = 0; i < n; i++)
      hv.client.publish(
        `eclor/v1/${GW}/cmd/read`,
        JSON.stringify({ id: `fl-${i}`, device: "dali", points: ["lamp1_level"] }),
        { qos: 0 },
      );
    const answers = () =>
      hv.received
        .filter((m) => m.topic === `eclor/v1/${GW}/res/read`)
        .map(
          (m) =>
            m.body as {
              ok: boolean;
              error?: { code: string };
            },
        );
    await waitFor(
      () => answers().some((a) => a.error?.code === "CommandRateLimited"),
      30_000,
      "rate-limited answers",
    );
    // Still serving: a ping gets through once the flood is absorbed.
    const ping = await hv.request("ping", { id: "after-flood" }, { timeoutMs: 60_000 });
    expect(ping.ok).toBe(true);
    const ok = answers().filter((a) => a.ok).length;
    // commands.read_rate_limit (default burst 10): nowhere near 3000 reads reached the bus.
    expect(ok).toBeLessThan(40);
    expect((sim.unit(3).functions.get(3) ?? 0) - before).toBeLessThan(1000);
    expect(
      answers().every((a) => a.ok || ["CommandRateLimited", "CommandBusy"].includes(a.error!.code)),
    ).toBe(true);
    // Every refusal is in the audit: rows of their own, then counted in aggregate rows.
    await waitFor(
      () => {
        const rows = daemon.query<{ who: string; command: string; message: string | null }>(
          "SELECT who, command, message FROM cmd_audit WHERE command IN ('read', '(refused)')",
        );
        const counted = rows
          .filter((r) => r.who === "aggregate")
          .reduce((a, r) => a + Number(/^(\d+) more/.exec(r.message ?? "")?.[1] ?? 0), 0);
        // The reads that ran (at most the burst and refill, < 40) are not refusals.
        return rows.filter((r) => r.who !== "aggregate").length + counted >= n - 40;
      },
      30_000,
      "every refusal audited or counted",
    );
  }, 120_000);

  it("caps control connections, line length and requests in flight", async () => {
    const conns = await Promise.all(Array.from({ length: 16 }, () => open(daemon.socket)));
    const extra = await open(daemon.socket);
    await waitFor(() => extra.closed(), 10_000, "the 17th connection closed");
    expect(extra.lines[0]).toMatchObject({ ok: false, error: { name: "CommandBusy" } });
    for (const c of conns.slice(1)) c.sock.destroy();

    const c = conns[0]!;
    for (let i = 1; i <= 40; i++)
      c.sock.write(`${JSON.stringify({ id: i, method: "read", params: { device: "dali" } })}\n`);
    await waitFor(() => c.lines.length >= 40, 30_000, "40 answers");
    const busy = c.lines.filter(
      (l) => (l.error as { name?: string } | undefined)?.name === "CommandBusy",
    );
    expect(busy.length).toBeGreaterThan(0);
    expect(busy.length).toBeLessThan(40);

    c.sock.write("x".repeat(300 * 1024));
    await waitFor(() => c.closed(), 10_000, "connection closed after a too long line");
    expect(JSON.stringify(c.lines.at(-1))).toMatch(/line too long/);
  }, 60_000);
});
