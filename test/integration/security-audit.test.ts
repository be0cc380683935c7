/**
 * Issue 14.6: every refused command is audited, with who — against the real daemon: a
 * schema-invalid and an unknown MQTT command (who: hypervisor), an unknown device written and
 * read through the control socket (who: the peer's uid from the socket, not just "local"); and
 * a burst of refusals becomes a few events plus one aggregated `commands_refused` event.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/ports.js";
import type { Hypervisor } from "./commands-fixtures.js";
import { type Daemon, type SecurityRig, open, startSecurityRig } from "./security-daemon.js";

const GW = "gw-sec-audit";
let rig: SecurityRig;
let hv: Hypervisor;
let daemon: Daemon;

beforeAll(async () => {
  rig = await startSecurityRig(GW);
  ({ hv, daemon } = rig);
}, 90_000);

afterAll(async () => {
  await rig?.dispose();
});

interface Row {
  who: string;
  command: string;
  command_id: string | null;
  device: string | null;
  outcome: string;
  code: string | null;
}
const rows = () => daemon.query<Row>("SELECT * FROM cmd_audit ORDER BY rowid");

describe("audit of refusals (issue 14.6)", () => {
  it("audits schema-invalid and unknown MQTT commands", async () => {
    const bad = await hv.request("write", { id: "inv-1", device: "dali", point: 7 });
    expect(bad).toMatchObject({ ok: false, error: { code: "CommandInvalid" } });
    const unk = await hv.request("reboot", { id: "unk-1" });
    expect(unk).toMatchObject({ ok: false, error: { code: "CommandUnknown" } });
    const raw = await hv.request("write", {}, { raw: "{not json" });
    expect(raw).toMatchObject({ ok: false, error: { code: "CommandInvalid" } });
    expect(rows()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          who: "hypervisor",
          command_id: "inv-1",
          outcome: "refused",
          code: "CommandInvalid",
        }),
        expect.objectContaining({
          who: "hypervisor",
          command: "reboot",
          command_id: "unk-1",
          code: "CommandUnknown",
        }),
        expect.objectContaining({
          who: "hypervisor",
          command: "write",
          command_id: null,
          code: "CommandInvalid",
        }),
      ]),
    );
  }, 30_000);

  it("audits the local socket's refusals with the peer's uid", async () => {
    const c = await open(daemon.socket);
    c.sock.write(
      `${JSON.stringify({ id: 1, method: "write", params: { device: "nope", point: "x", value: 1 } })}\n`,
    );
    c.sock.write(`${JSON.stringify({ id: 2, method: "read", params: { device: "nope" } })}\n`);
    await waitFor(() => c.lines.length >= 2, 10_000, "two answers");
    c.sock.destroy();
    expect(c.lines.map((l) => (l.error as { name: string }).name)).toEqual([
      "DeviceUnknown",
      "DeviceUnknown",
    ]);
    const who = `local:uid=${process.getuid!()}`;
    const mine = rows().filter((r) => r.device === "nope");
    expect(mine).toEqual([
      expect.objectContaining({ who, command: "write", outcome: "refused", code: "DeviceUnknown" }),
      expect.objectContaining({ who, command: "read", outcome: "refused", code: "DeviceUnknown" }),
    ]);
  }, 30_000);

  it("turns a burst of refusals into a few events and one aggregated event", async () => {
    const mark = hv.received.length;
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        hv.request("write", { id: `burst-${i}`, device: "dali" }),
      ),
    );
    const events = () =>
      hv.received
        .slice(mark)
        .filter((m) => m.topic === `eclor/v1/${GW}/events`)
        .flatMap(
          (m) => (m.body as { records: { type: string; data?: { count?: number } }[] }).records,
        );
    await waitFor(
      () => events().some((e) => e.type === "commands_refused"),
      40_000,
      "an aggregated commands_refused event",
    );
    const single = events().filter((e) => e.type === "command_audit").length;
    const counted = events()
      .filter((e) => e.type === "commands_refused")
      .reduce((a, e) => a + (e.data?.count ?? 0), 0);
    expect(single).toBeLessThanOrEqual(5);
    expect(single + counted).toBeGreaterThanOrEqual(30);
    // Rows: each refusal has its own (well under 100 in the window).
    expect(rows().filter((r) => r.command_id?.startsWith("burst-")).length).toBe(30);
  }, 60_000);
});
