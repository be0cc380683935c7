/**
 * Helpers for the LoRaWAN tests: an in-memory DriverState (for unit tests; one integration test
 * uses the store's real SQLite state), a context recording readings and events, and a driver
 * wired to a simulated concentrator.
 */
import { pino } from "pino";
import { lorawanDriverSchema, type LorawanDriverConfig } from "../../drivers/lorawan/schema.js";
import { createLorawanDriver, type LorawanDriver } from "../../drivers/lorawan/index.js";
import type { DriverContext, DriverEvent, DriverState, Reading } from "../../drivers/driver.js";
import { SimForwarder } from "../../sim/lorawan/forwarder.js";
import { SimRadio } from "../../sim/lorawan/device.js";

export class MemoryState implements DriverState {
  readonly map = new Map<string, string>();
  get<T = unknown>(key: string): T | undefined {
    const v = this.map.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  set(key: string, value: unknown): void {
    this.map.set(key, JSON.stringify(value));
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  keys(prefix = ""): string[] {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix));
  }
}

export interface Recorder {
  ctx: DriverContext;
  readings: Reading[];
  events: DriverEvent[];
}

export function recorder(state: DriverState = new MemoryState()): Recorder {
  const readings: Reading[] = [];
  const events: DriverEvent[] = [];
  return {
    readings,
    events,
    ctx: {
      logger: pino({ level: process.env.LOG_LEVEL ?? "silent" }),
      emit: (r) => readings.push(...r),
      event: (e) => events.push(e),
      state,
    },
  };
}

export const OTAA = {
  devEui: "0004a30b001c0530",
  joinEui: "70b3d57ed0000001",
  appKey: "98929b92c49edba9676d646d3b612456",
};
export const ABP = {
  devEui: "0004a30b001c0531",
  devAddr: "26011bda",
  nwkSKey: "44024241ed4ce9a68c6a8bc055233fd3",
  appSKey: "ec925802ae430ca77fd3dd73cb2cc588",
};

export function lorawanConfig(extra: Record<string, unknown> = {}): LorawanDriverConfig {
  return lorawanDriverSchema.parse({
    id: "lora",
    driver: "lorawan",
    listen: { host: "127.0.0.1", port: 0 },
    dedup_window: "100ms",
    profiles: {
      co2: {
        codec: "milesight-am103",
        points: [
          { id: "co2", unit: "ppm" },
          { id: "temperature", unit: "Cel" },
          { id: "humidity", unit: "%RH" },
          { id: "battery", unit: "%" },
          { id: "report_interval", unit: "s", writable: true, min: 60, max: 64800 },
        ],
      },
    },
    devices: [
      {
        id: "co2-ecole",
        dev_eui: OTAA.devEui,
        activation: { type: "otaa", join_eui: OTAA.joinEui, app_key: OTAA.appKey },
        profile: "co2",
      },
      {
        id: "co2-mairie",
        dev_eui: ABP.devEui,
        activation: {
          type: "abp",
          dev_addr: ABP.devAddr,
          nwk_s_key: ABP.nwkSKey,
          app_s_key: ABP.appSKey,
        },
        profile: "co2",
      },
    ],
    ...extra,
  });
}

export interface Rig {
  driver: LorawanDriver;
  radio: SimRadio;
  forwarders: SimForwarder[];
  rec: Recorder;
  close(): Promise<void>;
}

/** A started driver and `gateways` simulated concentrators connected to it. */
export async function rig(
  opts: { cfg?: LorawanDriverConfig; state?: DriverState; gateways?: number; version?: 1 | 2 } = {},
): Promise<Rig> {
  const rec = recorder(opts.state);
  const driver = createLorawanDriver(opts.cfg ?? lorawanConfig(), rec.ctx);
  await driver.start();
  const radio = new SimRadio();
  const forwarders: SimForwarder[] = [];
  for (let i = 0; i < (opts.gateways ?? 1); i++) {
    const fw = new SimForwarder({
      server: { host: "127.0.0.1", port: driver.port() },
      gatewayEui: `aa555a00000000${String(i).padStart(2, "0")}`,
      version: opts.version ?? 2,
      onAir: radio.air,
    });
    await fw.start();
    forwarders.push(fw);
    radio.forwarders.push(fw);
  }
  return {
    driver,
    radio,
    forwarders,
    rec,
    async close() {
      await Promise.all(forwarders.map((f) => f.stop()));
      await driver.stop();
    },
  };
}
