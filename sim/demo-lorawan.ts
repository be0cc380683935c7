/**
 * The LoRaWAN side of `npm run demo`: one simulated concentrator (Semtech UDP packet forwarder)
 * and the end devices of the demo config's `lorawan` driver, which join over the air (OTAA) and
 * send encrypted uplinks in their codec's format to the port the agent's driver bound.
 * The devices are read from the config itself (DevEUI, JoinEUI, AppKey, codec), so the config is
 * the only place the demo's keys are written.
 */
import type { Agent } from "../agent/agent.js";
import type { Config } from "../config/schema.js";
import { resolveDevices } from "../drivers/lorawan/devices.js";
import { LorawanDriver } from "../drivers/lorawan/index.js";
import type { LorawanDriverConfig } from "../drivers/lorawan/schema.js";
import { CODEC_OF, type SimKind } from "./lorawan/payloads.js";
import { runLorawanSim, type SimIdentity } from "./lorawan/run.js";

/** Time between two uplinks of a device (plus its ~2 s of receive windows): a few seconds, so
 * the live view shows LoRaWAN telemetry soon after the join (5 s: the Join Accept's RX1). */
const INTERVAL_MS = 3000;

const KIND_OF_CODEC = new Map(Object.entries(CODEC_OF).map(([k, codec]) => [codec, k as SimKind]));

/** The config's devices as the simulator plays them (codec through the profile: resolveDevices). */
function simDevices(dc: LorawanDriverConfig): SimIdentity[] {
  return resolveDevices(dc).map((d) => {
    const kind = KIND_OF_CODEC.get(d.codec);
    const a = d.cfg.activation;
    if (!kind || a.type !== "otaa")
      throw new Error(
        `demo: LoRaWAN device ${d.id} must be an OTAA device with one of the codecs ${[...KIND_OF_CODEC.keys()].join(", ")}`,
      );
    return {
      id: d.id,
      kind,
      devEui: d.devEui,
      joinEui: a.join_eui,
      appKey: a.app_key,
      devAddr: "",
      nwkSKey: "",
      appSKey: "",
    };
  });
}

export interface DemoLorawan {
  port: number;
  devices: SimIdentity[];
  stop(): Promise<void>;
}

/** Start the simulated devices of the config's LoRaWAN driver against the running agent. */
export function startDemoLorawan(
  agent: Agent,
  config: Config,
  onProblem: (text: string) => void,
): DemoLorawan | undefined {
  const dc = config.drivers.find((d): d is LorawanDriverConfig => d.driver === "lorawan");
  if (!dc) return undefined;
  const driver = agent.drivers.find((d) => d.id === dc.id);
  if (!(driver instanceof LorawanDriver))
    throw new Error(`demo: the LoRaWAN driver ${dc.id} did not start (see the agent log)`);
  const devices = simDevices(dc);
  const port = driver.port();
  const run = runLorawanSim({
    server: { host: "127.0.0.1", port },
    gateways: 1,
    identities: devices,
    intervalMs: INTERVAL_MS,
    abp: false,
    seed: "eclor-demo",
    version: 2,
    confirmed: false,
    // The live view is the hypervisor's: of the radio side, only show what goes wrong.
    log: (l) => {
      if (l.event === "join_failed")
        onProblem(`${String(l.device)}: no Join Accept, joining again in 10 s`);
    },
  });
  // Stopping the forwarder may leave a device waiting for a PUSH_ACK that will not come.
  let stopping = false;
  void run.done.catch((e: unknown) => {
    if (!stopping) onProblem(`the simulator stopped: ${String(e)}`);
  });
  return {
    port,
    devices,
    async stop() {
      stopping = true;
      await run.stop();
    },
  };
}
