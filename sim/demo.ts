/**
 * `npm run demo`: the whole chain on one machine, nothing to install.
 *   embedded MQTT broker (aedes) ← agent (config/examples/demo.yaml) ← simulated Modbus devices
 * and a live view of what the hypervisor receives (a subscriber on eclor/v1/#). Every minute
 * the meter stops answering for a while (timeouts, offline/online events, recovery) and the
 * lighting gateway dims the street and restores it (report by exception on change).
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
import { validateConfigObject } from "../config/load.js";
import { addSimDevice, ModbusSimulator } from "./modbus/index.js";

const tty = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const c = (code: number) => (s: string) => (tty ? `\u001b[${code}m${s}\u001b[0m` : s);
const dim = c(2);
const red = c(31);
const green = c(32);
const yellow = c(33);
const cyan = c(36);
const bold = c(1);

const configFile = fileURLToPath(new URL("../../config/examples/demo.yaml", import.meta.url));

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
}

const clock = (t: number) => new Date(t).toTimeString().slice(0, 8);

function fmt(v: unknown): string {
  return typeof v === "number" ? String(Math.round(v * 100) / 100) : String(v);
}

/** One line per device of a telemetry message: what the hypervisor got, compactly. */
interface Rec {
  n?: string;
  seq?: number;
  v?: number;
  vb?: boolean;
  vs?: string;
  u?: string;
  q?: string;
}

function showTelemetry(payload: { records?: Rec[] }): void {
  const recs = payload.records ?? [];
  if (recs.length === 0) return;
  const byDevice = new Map<string, string[]>();
  for (const r of recs) {
    const [dev, point] = (r.n ?? "?/?").split("/");
    const value = r.v ?? r.vb ?? r.vs;
    const text = r.q
      ? red(`${point} ${String(r.q)}`)
      : `${point} ${bold(fmt(value))}${r.u ? ` ${String(r.u)}` : ""}`;
    byDevice.set(dev!, [...(byDevice.get(dev!) ?? []), text]);
  }
  const seqs = recs.map((r) => Number(r.seq));
  const width = process.stdout.columns ?? 160;
  for (const [dev, parts] of byDevice) {
    const line = `${dim(clock(Date.now()))} ${cyan("telemetry")} ${dim(`#${Math.min(...seqs)}-${Math.max(...seqs)}`)} ${dev}: ${parts.join(dim(" · "))}`;
    // eslint-disable-next-line no-control-regex
    const visible = line.replace(/\u001b\[\d+m/g, "");
    process.stdout.write(
      `${visible.length > width && tty ? `${line.slice(0, width + (line.length - visible.length) - 1)}…` : line}\n`,
    );
  }
}

function show(topic: string, buf: Buffer): void {
  const kind = topic.split("/").slice(3).join("/");
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(buf.toString()) as Record<string, unknown>;
  } catch {
    process.stdout.write(`${dim(clock(Date.now()))} ${kind} ${buf.length} bytes\n`);
    return;
  }
  if (kind === "telemetry") return showTelemetry(payload);
  if (kind === "events") {
    const recs = (payload.records as Record<string, unknown>[] | undefined) ?? [payload];
    for (const e of recs as { severity?: string; type?: string; message?: string }[]) {
      const sev = e.severity ?? "info";
      const paint = sev === "error" ? red : sev === "warning" ? yellow : green;
      process.stdout.write(
        `${dim(clock(Date.now()))} ${paint(`event ${e.type ?? "?"}`)} ${e.message ?? ""}\n`,
      );
    }
    return;
  }
  if (kind === "state") {
    process.stdout.write(
      `${dim(clock(Date.now()))} ${green("state")} ${JSON.stringify(payload).slice(0, 200)}\n`,
    );
    return;
  }
  process.stdout.write(
    `${dim(clock(Date.now()))} ${kind} ${JSON.stringify(payload).slice(0, 160)}\n`,
  );
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
    drivers: { transport: { port?: number } }[];
  };
  raw.uplink.url = `mqtt://127.0.0.1:${mqttPort}`;
  raw.state_dir = dir;
  raw.control = { socket: join(dir, "control.sock") };
  for (const d of raw.drivers) d.transport.port = modbusPort;
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

  process.stdout.write(
    `${bold("eclor-edge demo")}  broker mqtt://127.0.0.1:${mqttPort} · Modbus simulator 127.0.0.1:${modbusPort} (SDM630 unit 12, DALI gateway unit 3)\n` +
      `${dim(`config ${configFile} · state and agent log in ${dir} · Ctrl-C stops`)}\n` +
      `${dim(`try: mosquitto_sub -p ${mqttPort} -t 'eclor/v1/#' -v   ·   mbpoll -m tcp -p ${modbusPort} -a 12 -0 -r 0 -c 2 -t 3:float -B 127.0.0.1`)}\n\n`,
  );
  await agent.start();

  // 5. A little drama every minute: the meter goes silent for 15 s.
  let t = 0;
  const drama = setInterval(() => {
    t += 1;
    if (t % 60 === 20) {
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
