/**
 * The command router's part of LoRaWAN confirmed downlinks (issue 17.4): `confirmed` reaches the
 * driver of a LoRaWAN device, is part of the command's fingerprint (same id, other flag: refused),
 * and is refused, audited, for devices of other kinds.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeviceInfo } from "../../drivers/driver.js";
import { writeRequest } from "../../agent/commands/schemas.js";
import { FakeTarget, TempDb, lampInventory, makeRouter } from "./commands-helpers.js";

class LoraTarget extends FakeTarget {
  override inventory(): DeviceInfo[] {
    return [
      ...lampInventory,
      {
        id: "co2",
        driver: "lora",
        kind: "lorawan",
        points: [{ id: "report_interval", type: "number", writable: true, min: 60 }],
      },
    ];
  }
}

let tmp: TempDb;
beforeEach(() => (tmp = new TempDb()));
afterEach(() => tmp.dispose());

describe("confirmed downlinks through the command router", () => {
  it("the MQTT schema accepts `confirmed` (it was an unknown key)", () => {
    const r = writeRequest.safeParse({
      id: "c1",
      device: "co2",
      point: "report_interval",
      value: 600,
      confirmed: true,
    });
    expect(r.success).toBe(true);
    expect(
      writeRequest.safeParse({ id: "c", device: "co2", point: "p", value: 1, confirmed: 1 })
        .success,
    ).toBe(false);
  });

  it("reaches the LoRaWAN driver; a resend with another flag is a different command", async () => {
    const target = new LoraTarget();
    const { router } = makeRouter(tmp.db, target);
    const cmd = { id: "c1", device: "co2", values: [{ point: "report_interval", value: 600 }] };
    expect(await router.write({ ...cmd, confirmed: true }, "hypervisor")).toMatchObject({
      ok: true,
    });
    expect(target.writes[0]).toMatchObject({ device: "co2", confirmed: true, commandId: "c1" });
    const again = await router.write(cmd, "hypervisor");
    expect(again).toMatchObject({ ok: false, error: { code: "CommandInvalid" } });
    expect(target.writes).toHaveLength(1);
  });

  it("is refused and audited for a device of another kind", async () => {
    const target = new LoraTarget();
    const { router, audit } = makeRouter(tmp.db, target);
    const r = await router.write(
      { id: "m1", device: "lamp-1", values: [{ point: "dim", value: 40 }], confirmed: true },
      "hypervisor",
    );
    expect(r).toMatchObject({ ok: false, error: { code: "CommandInvalid" } });
    expect(r.ok ? "" : r.error.message).toMatch(/LoRaWAN downlinks only/);
    expect(target.writes).toHaveLength(0);
    expect(audit.list()).toMatchObject([{ commandId: "m1", outcome: "refused" }]);
  });
});
