/** Config block of the LoRaWAN driver: defaults, clear errors with paths, the sample file. */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { validateConfigObject } from "../../config/load.js";
import { lorawanDriverSchema } from "../../drivers/lorawan/schema.js";
import { driverBlock } from "../../sim/lorawan/run.js";

const base = { version: 1, gateway: { id: "gw1" }, uplink: { url: "mqtt://127.0.0.1:1883" } };
const env = {
  LORA_KEY_CO2_ECOLE: "00112233445566778899aabbccddeeff",
  LORA_NWKSKEY_STADE: "00112233445566778899aabbccddeeff",
  LORA_APPSKEY_STADE: "ffeeddccbbaa99887766554433221100",
};
const issues = (block: unknown) => {
  const r = lorawanDriverSchema.safeParse(block);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};
const dev = {
  id: "d1",
  dev_eui: "0004a30b001c0530",
  codec: "milesight-am103",
  activation: {
    type: "otaa",
    join_eui: "70b3d57ed0000001",
    app_key: "98929b92c49edba9676d646d3b612456",
  },
};

describe("lorawan config", () => {
  it("accepts the sample with its secrets from the environment and files", () => {
    const raw = {
      ...base,
      ...(parse(
        readFileSync(new URL("../../drivers/lorawan/sample.yaml", import.meta.url), "utf8"),
      ) as object),
    };
    const cfg = validateConfigObject(raw, "sample.yaml", {
      env,
      baseDir: "/",
      readFile: () => "0123456789abcdef0123456789ABCDEF\n",
    });
    const lw = cfg.drivers[0]!;
    expect(lw).toMatchObject({
      driver: "lorawan",
      listen: { port: 1700 },
      dedup_window: 200,
      codec_timeout: 100,
      rx2_frequency: 869.525,
    });
    if (lw.driver !== "lorawan") throw new Error("not lorawan");
    // Keys are normalised to lower case.
    expect(lw.devices[1]!.activation).toMatchObject({
      app_key: "0123456789abcdef0123456789abcdef",
    });
  });

  it("fills defaults", () => {
    const c = lorawanDriverSchema.parse({ id: "l", driver: "lorawan", devices: [dev] });
    expect(c).toMatchObject({
      listen: { host: "127.0.0.1", port: 1700 },
      gateways: { allow: [], max: 16, rebind_after: 120_000 },
      event_interval: 60_000,
      net_id: "000000",
      rx1_delay_s: 1,
      rx2_dr: 0,
      tx_power: 14,
      max_queue: 8,
      confirmed_retries: 2,
      codec_memory_mb: 32,
    });
    expect(c.devices[0]).toMatchObject({
      class: "A",
      link_points: true,
      enabled: true,
      points: [],
    });
  });

  it("names the field and the fix for bad keys, EUIs and references", () => {
    const got = issues({
      id: "l",
      driver: "lorawan",
      devices: [
        { ...dev, dev_eui: "0004a30b001c05" },
        {
          ...dev,
          id: "d2",
          activation: { type: "otaa", join_eui: "70b3d57ed0000001", app_key: "xyz" },
        },
        {
          ...dev,
          id: "d5",
          dev_eui: "0004a30b001c0533",
          activation: { type: "abp", dev_addr: "123", nwk_s_key: "00", app_s_key: "00" },
        },
        { ...dev, id: "d6", dev_eui: "0004a30b001c0534", class: "C" },
        { ...dev, id: "d8", dev_eui: "0004a30b001c0536", activation: { type: "lorawan11" } },
      ],
    });
    expect(got).toEqual([
      "devices.0.dev_eui: expected a DevEUI: 16 hexadecimal digits, most significant first (e.g. 0123456789abcdef)",
      "devices.1.activation.app_key: expected an AppKey (128-bit AES key): 32 hexadecimal digits, most significant first (e.g. 0123456789abcdef0123456789abcdef)",
      "devices.2.activation.dev_addr: expected a DevAddr: 8 hexadecimal digits, most significant first (e.g. 01234567)",
      "devices.2.activation.nwk_s_key: expected a NwkSKey (128-bit AES key): 32 hexadecimal digits, most significant first (e.g. 0123456789abcdef0123456789abcdef)",
      "devices.2.activation.app_s_key: expected an AppSKey (128-bit AES key): 32 hexadecimal digits, most significant first (e.g. 0123456789abcdef0123456789abcdef)",
      'devices.3.class: expected class "A" (classes B and C are not supported)',
      'devices.4.activation.type: expected activation.type "otaa" (join_eui, app_key) or "abp" (dev_addr, nwk_s_key, app_s_key)',
    ]);
    // Cross-references are checked once the block is well-formed (zod runs refinements last).
    expect(
      issues({
        id: "l",
        driver: "lorawan",
        profiles: { p: { codec: "milesight-am103" } },
        devices: [
          { ...dev, codec: undefined, profile: "nope" },
          { ...dev, id: "gw-x", dev_eui: "0004a30b001c0532" },
          { ...dev, id: "d7", dev_eui: "0004a30b001c0535", codec: undefined },
          { ...dev, id: "d9", dev_eui: "0004a30b001c0537", points: [{ id: "a" }, { id: "a" }] },
        ],
      }),
    ).toEqual([
      'devices.0.profile: unknown profile "nope"; known: p',
      'devices.1.id: device ids starting with "gw-" are reserved for the concentrators\' own readings; rename the device',
      "devices.2.codec: a device needs a codec: set `profile` (a profile of this driver) or `codec`",
      'devices.3.points.1.id: duplicate point id "a"',
    ]);
    expect(issues({ id: "l", driver: "lorawan", net_id: "600013" })).toEqual([
      "net_id: expected a type-0 NetID 000000..00003F (other NetID types are not supported)",
    ]);
    // The same DevEUI twice.
    expect(issues({ id: "l", driver: "lorawan", devices: [dev, { ...dev, id: "d2" }] })).toEqual([
      "devices.1.dev_eui: dev_eui 0004a30b001c0530 is already used by devices[0]",
    ]);
    // A listener open to the network needs registered concentrators (issue 14.4).
    expect(issues({ id: "l", driver: "lorawan", listen: { host: "0.0.0.0" } })).toEqual([
      "gateways.allow: listen.host 0.0.0.0 accepts packet forwarders from the network, which the Semtech UDP protocol does not authenticate: list the concentrators' EUIs in gateways.allow, or listen on 127.0.0.1 when the concentrator is in the box",
    ]);
    expect(
      issues({
        id: "l",
        driver: "lorawan",
        listen: { host: "0.0.0.0" },
        gateways: { allow: ["AA555A0000000000", { eui: "aa555a0000000000", address: "10.1" }] },
      }),
    ).toEqual([
      'gateways.allow.1: expected a gateway EUI (16 hexadecimal digits) or { eui, address, name } with address an IPv4 or IPv6 address, e.g. { eui: aa555a0000000000, address: "127.0.0.1" }',
    ]);
    expect(
      issues({
        id: "l",
        driver: "lorawan",
        gateways: { allow: ["AA555A0000000000", { eui: "aa555a0000000000" }] },
      }),
    ).toEqual(["gateways.allow.1: gateway aa555a0000000000 is listed twice"]);
    // Unknown keys are errors (a typo must not be silently ignored).
    expect(issues({ id: "l", driver: "lorawan", dedup: "1s" }).join()).toMatch(/dedup/);
    expect(
      issues({ id: "l", driver: "lorawan", devices: [{ ...dev, codec: "../evil" }] }).join(),
    ).toMatch(/built-in codec name/);
  });

  it("`sim lorawan --print-config` produces a block the agent accepts (OTAA and ABP)", () => {
    for (const abp of [false, true]) {
      const raw = {
        ...base,
        ...(parse(
          driverBlock({
            devices: 3,
            kinds: ["co2", "people", "water"],
            seed: "t",
            abp,
            port: 1700,
          }),
        ) as object),
      };
      const cfg = validateConfigObject(raw, "sim", { env: {}, baseDir: "/" });
      expect(cfg.drivers[0]!.devices).toHaveLength(3);
    }
  });
});
