/**
 * `npm run demo`: the whole chain on one machine, nothing to install.
 *   embedded MQTT broker (aedes) ← agent (config/examples/demo.yaml) ← simulated Modbus devices
 *                                                                    ← simulated LoRaWAN devices
 * and a live view of what the hypervisor receives (a subscriber on eclor/v1/#). The LoRaWAN
 * sensors join over the air (OTAA) through a simulated packet forwarder on UDP, then report every
 * few seconds. After 4 s the demo, as the hypervisor, dims a lamp with a `cmd/write` request.
 * Every minute the meter stops answering for a while (timeouts, offline/online events, recovery)
 * and the lighting gateway dims the street and restores it (report by exception on change).
 * Ctrl-C stops everything cleanly. `--duration SECONDS` stops by itself (used by the tests).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { pino } from "pino";
import { parse } from "yaml";
import { Agent } from "../agent/agent.js";
import { attachWhenReady } from "../agent/commands/control-plane.js";
import { topicsFor } from "../agent/uplink/topics.js";
import { validateConfigObject } from "../config/load.js";
import { startDemoLorawan } from "./demo-lorawan.js";
import { bold, dim, show, yellow } from "./demo-view.js";
import { addSimDevice, ModbusSimulator } from "./modbus/index.js";

const configFile = fileURLToPath(new URL("../../config/examples/demo.yaml", import.meta.url));

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
}

async function main(): Promise<void> {
  const durIdx = process.argv.indexOf("--duration");
  const duration = durIdx > 0 ? Number(process.argv[durIdx + 1]) : undefined;
  if (duration !== undefined && !(duration > 0)) {
    process.stderr.write("error: --duration expects a number of seconds\n");
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), "eclor-demo-"));

  // 1. The hypervisor's broker.
  const broker = await Aedes.createBroker();
  const brokerServer = createServer(broker.handle);
  const mqttPort = await listen(brokerServer);

  // 2. The field devices.
  const sim = new ModbusSimulator();
  addSimDevice(sim, 12, "eastron-sdm630");
  addSimDevice(sim, 3, "dali-gateway");
  sim.startTicking();
  const modbusPort = await sim.listenTcp(0);

  // 3. The agent, with the demo config pointed at them.
  // Plain YAML, validated just below; only the fields the demo rewrites are typed.
  const raw = parse(readFileSync(configFile, "utf8")) as {
    uplink: { url: string };
    state_dir: string;
    control?: unknown;
    drivers: { driver: string; transport?: { port?: number }; listen?: { port?: number } }[];
  };
  raw.uplink.url = `mqtt://127.0.0.1:${mqttPort}`;
  raw.state_dir = dir;
  raw.control = { socket: join(dir, "control.sock") };
  for (const d of raw.drivers) {
    if (d.driver === "modbus" && d.transport) d.transport.port = modbusPort;
    // Port 0: the driver binds a free UDP port, and the packet forwarder is pointed at it below.
    if (d.driver === "lorawan") d.listen = { ...d.listen, port: 0 };
  }
  const config = validateConfigObject(raw, configFile, { env: process.env, baseDir: dir });
  const logFile = join(dir, "agent.log");
  const logger = pino(
    { level: config.log.level },
    pino.destination({ dest: logFile, sync: false }),
  );
  const agent = new Agent(config, { logger, configPath: configFile });

  // 4. The hypervisor's view.
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
    clientId: "demo-hypervisor",
  });
  sub.on("message", show);
  await sub.subscribeAsync("eclor/v1/#", { qos: 1 });

  await agent.start();
  // The command router (cmd/…), attached as `eclor-edge run` attaches it.
  const stopCommands = attachWhenReady(agent, { config, raw, logger });
  // 5. The LoRaWAN sensors, against the UDP port the agent's driver bound.
  const problem = (text: string) => process.stdout.write(yellow(`lorawan simulator: ${text}\n`));
  const lora = startDemoLorawan(agent, config, problem);
  const cmdTopic = `${topicsFor(config.uplink.prefix, config.gateway.id).cmdPrefix}write`;
  process.stdout.write(
    `${bold("eclor-edge demo")}  broker mqtt://127.0.0.1:${mqttPort} · Modbus simulator 127.0.0.1:${modbusPort} (SDM630 unit 12, DALI gateway unit 3)\n` +
      (lora
        ? `LoRaWAN packet forwarder → UDP 127.0.0.1:${lora.port} · ${lora.devices.map((d) => d.id).join(", ")} (OTAA join, then an uplink every few seconds)\n`
        : "") +
      `${dim(`config ${configFile} · state and agent log in ${dir} · Ctrl-C stops`)}\n` +
      `${dim(`try: mosquitto_sub -p ${mqttPort} -t 'eclor/v1/#' -v   ·   mbpoll -m tcp -p ${modbusPort} -a 12 -0 -r 0 -c 2 -t 3:float -B 127.0.0.1`)}\n` +
      `${dim(`     mosquitto_pub -p ${mqttPort} -t ${cmdTopic} -m '{"id":"try-1","device":"dali-rue-gare","point":"lamp1_level","value":50}'`)}\n\n`,
  );

  // 6. A little drama: after 4 s the hypervisor dims a lamp; every minute the meter goes silent
  // for 15 s and the street is dimmed, then restored.
  let t = 0;
  const drama = setInterval(() => {
    t += 1;
    if (t === 4) {
      // The response comes back on <prefix>/<gateway>/res/write (MQTT 3.1.1: no response topic).
      const request = {
        id: "demo-dim-1",
        device: "dali-rue-gare",
        point: "lamp0_level",
        value: 30,
      };
      sub.publish(cmdTopic, JSON.stringify(request), { qos: 1 });
    } else if (t % 60 === 20) {
      process.stdout.write(yellow(`\n── demo: the meter stops answering for 15 s ──\n`));
      sim.setFault(12, { kind: "no_answer" });
    } else if (t % 60 === 35) {
      process.stdout.write(yellow(`\n── demo: the meter answers again ──\n`));
      sim.setFault(12, { kind: "none" });
    } else if (t % 60 === 45 || t % 60 === 55) {
      // As if the gateway's own photocell schedule dimmed the street, then restored it.
      const level = t % 60 === 45 ? 40 : 100;
      process.stdout.write(
        yellow(`\n── demo: the DALI gateway sets every lamp to ${level} % ──\n`),
      );
      const dali = sim.unit(3);
      dali.bank.holding[300] = level;
      dali.behaviour.afterWrite?.("holding", 300, [level]);
    }
  }, 1000);

  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
    if (duration) setTimeout(resolve, duration * 1000).unref();
  });
  process.stdout.write(dim("\nstopping…\n"));
  clearInterval(drama);
  await lora?.stop();
  stopCommands();
  await agent.stop();
  await sub.endAsync();
  await sim.close();
  await new Promise<void>((r) => broker.close(() => r()));
  await new Promise<void>((r) => brokerServer.close(() => r()));
  logger.flush();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(dim("stopped.\n"));
  process.exit(0);
}

await main();
