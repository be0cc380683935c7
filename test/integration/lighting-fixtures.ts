/**
 * The lighting rig: a real Mosquitto, the Modbus simulator's DALI gateway (unit 3) and a field
 * cabinet with a presence detector, a lux sensor and a relay circuit (unit 5), the in-process
 * agent with its real command router — and a fake clock the tests move through the night.
 */
import type { ClockSource } from "../../agent/lighting/clock.js";
import type { DriverEvent } from "../../drivers/driver.js";
import { addSimDevice, ModbusSimulator, type SimUnit } from "../../sim/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { waitFor } from "../helpers/ports.js";
import { AgentHarness, baseConfig, Hypervisor, type RunningAgent } from "./commands-fixtures.js";

/** Wall time, monotonic time and the last time sync, moved by the test. */
export class FakeClock implements ClockSource {
  private monoMs = 1_000_000;
  sync: number | null;
  constructor(private wall: number) {
    this.sync = wall - 60_000;
  }
  now(): number {
    return this.wall;
  }
  mono(): number {
    return this.monoMs;
  }
  lastSync(): number | null {
    return this.sync;
  }
  /** Time passes (both clocks). */
  set(wall: number): void {
    this.monoMs += wall - this.wall;
    this.wall = wall;
  }
  /** The wall clock jumps (the monotonic clock does not). */
  jump(ms: number): void {
    this.wall += ms;
  }
}

export const THIONVILLE = { lat: 49.3579, lon: 6.1683 };

export function lightingBlock(midnightLevel = 40): Record<string, unknown> {
  return {
    poll: "200ms",
    programs: [
      {
        id: "street",
        controls: [
          { at: "sunset", offset: 15, level: 100 },
          { at: "00:00", level: midnightLevel, ramp: "0s" },
          { at: "sunrise", offset: -15, level: 0 },
        ],
      },
    ],
    calendars: [{ id: "town", rules: [{ program: "street" }] }],
    groups: [
      {
        id: "main",
        calendar: "town",
        rated_power_w: 400,
        lamps: [
          {
            device: "dali",
            point: "group0_level",
            name: "DALI group 0",
            readback: [
              { point: "lamp0_level", status: "lamp0_status", name: "rue Haute n°1" },
              { point: "lamp4_level", status: "lamp4_status", name: "rue Haute n°5" },
              // Wired to DALI group 1 by mistake: it does not follow group 0.
              { point: "lamp1_level", name: "rue Haute n°3" },
            ],
          },
          { device: "cabinet", point: "relay", name: "circuit 1" },
        ],
        presence: { device: "cabinet", point: "motion", level: 90, hold: "5m" },
      },
      {
        id: "side",
        calendar: "town",
        rated_power_w: 100,
        lamps: [
          {
            device: "dali",
            point: "group3_level",
            readback: [{ point: "lamp3_level", status: "lamp3_status", name: "impasse n°4" }],
          },
        ],
      },
    ],
  };
}

export function lightingConfig(gw: string, url: string, port: number, lighting = lightingBlock()) {
  const cfg = baseConfig(gw, url, port, { lighting });
  (cfg.gateway as Record<string, unknown>).location = THIONVILLE;
  const drivers = cfg.drivers as { devices: unknown[] }[];
  drivers[0]!.devices.push({
    id: "cabinet",
    unit_id: 5,
    points: [
      { id: "motion", table: "holding", address: 0 },
      { id: "lux", table: "holding", address: 1, unit: "lx" },
      { id: "relay", table: "coil", address: 0, writable: true },
    ],
  });
  return cfg;
}

export interface LightingRig {
  broker: Mosquitto;
  sim: ModbusSimulator;
  dali: SimUnit;
  cabinet: SimUnit;
  harness: AgentHarness;
  run: RunningAgent;
  hv: Hypervisor;
  clock: FakeClock;
  events: DriverEvent[];
  start(): Promise<void>;
  tick(): Promise<void>;
}

export async function startLightingRig(gw: string, startAt: number): Promise<LightingRig> {
  const broker = await Mosquitto.start();
  const sim = new ModbusSimulator();
  const dali = addSimDevice(sim, 3, "dali-gateway");
  const cabinet = sim.addUnit(5, {});
  const port = await sim.listenTcp(0);
  const harness = new AgentHarness(lightingConfig(gw, broker.url, port));
  const rig = {
    broker,
    sim,
    dali,
    cabinet,
    harness,
    clock: new FakeClock(startAt),
    events: [] as DriverEvent[],
    async start() {
      this.run = await harness.start({ lightingClock: this.clock });
      this.run.agent.onRecord((rs) => {
        for (const r of rs) if (r.event) this.events.push(r.event);
      });
    },
    async tick() {
      await this.run.cp.lighting.running!.tick();
    },
  } as LightingRig;
  await rig.start();
  rig.hv = await Hypervisor.connect(broker.url, gw);
  await rig.hv.waitReady();
  return rig;
}

export async function disposeLightingRig(rig: LightingRig | undefined): Promise<void> {
  if (!rig) return;
  await rig.hv?.close();
  await rig.run?.stop();
  await rig.sim.close();
  await rig.broker.dispose();
  rig.harness.dispose();
}

/** Wait until the event of `type` (and matching `data`) has been committed. */
export function waitEvent(
  rig: LightingRig,
  type: string,
  match: (e: DriverEvent) => boolean = () => true,
) {
  return waitFor(
    () => rig.events.some((e) => e.type === type && match(e)),
    10_000,
    `event ${type}`,
  );
}
