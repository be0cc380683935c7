/**
 * modbus-poll: 100 simulated Modbus TCP devices × 50 holding registers, polled as fast as they
 * answer for a fixed time, three ways in the same run against the same simulator (a child
 * process, so it does not share this process's CPU):
 *   - reference: a bare modbus-serial loop, one client per device, `readHoldingRegisters(0, 50)`
 *     back to back (what the library can do with no driver around it);
 *   - driver: the Modbus driver alone (planning, queueing, decoding into 50 Readings/request);
 *   - agent: the whole agent — driver → pipeline (report by exception, max_interval 15m) →
 *     SQLite store (group commit) — with its uplink pointed at a port where no broker listens.
 * Prints one JSON object: rates, the agent/reference ratio (goal ≥ 0.8) and the CPU time of this
 * process per 1,000 points/s (= CPU ms per 1,000 points).
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import modbusSerial from "modbus-serial";
import { pino } from "pino";

const DEVICES = 100;
const REGISTERS = 50;
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 4000);
const ROUNDS = 2;
const WARMUP_MS = 1000;

interface Phase {
  requests: number;
  registers: number;
  seconds: number;
  cpuMs: number;
}

async function measure(
  run: () =>
    | { count: () => number; stop: () => Promise<void> }
    | Promise<{ count: () => number; stop: () => Promise<void> }>,
): Promise<Phase> {
  const h = await run();
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const n0 = h.count();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, PHASE_MS));
  const n1 = h.count();
  const cpu = process.cpuUsage(c0);
  const seconds = (performance.now() - t0) / 1000;
  await h.stop();
  const requests = n1 - n0;
  return {
    requests,
    registers: requests * REGISTERS,
    seconds,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function bare(ports: number[]) {
  const ModbusRTU = modbusSerial.default;
  let count = 0;
  let running = true;
  const clients = await Promise.all(
    ports.map(async (port) => {
      const c = new ModbusRTU();
      await c.connectTCP("127.0.0.1", { port });
      c.setID(1);
      c.setTimeout(1000);
      return c;
    }),
  );
  const loops = clients.map(async (c) => {
    while (running) {
      await c.readHoldingRegisters(0, REGISTERS);
      count++;
    }
  });
  return {
    count: () => count,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => new Promise<void>((r) => c.close(() => r()))));
    },
  };
}

function devices(ports: number[]) {
  return ports.map((port, i) => ({
    id: `dev${i}`,
    unit_id: 1,
    port,
    points: Array.from({ length: REGISTERS }, (_, a) => ({
      id: `r${a}`,
      table: "holding",
      address: a,
      max_interval: "15m",
    })),
  }));
}

const driverBlock = (ports: number[]) => ({
  id: "bench",
  driver: "modbus",
  transport: { type: "tcp", host: "127.0.0.1", port: ports[0] },
  poll_interval: "1ms",
  timeout_ms: 2000,
  devices: devices(ports),
});

async function driverOnly(ports: number[]) {
  const { modbusDriverSchema } = await import("../drivers/modbus/schema.js");
  const { createModbusDriver } = await import("../drivers/modbus/index.js");
  let points = 0;
  const d = createModbusDriver(modbusDriverSchema.parse(driverBlock(ports)), {
    logger: pino({ level: "silent" }),
    emit: (r) => void (points += r.length),
    event: () => {},
    state: { get: () => undefined, set: () => {}, delete: () => {}, keys: () => [] },
  });
  await d.start();
  return { count: () => points / REGISTERS, stop: () => d.stop() };
}

async function agent(ports: number[], dir: string) {
  mkdirSync(dir, { recursive: true });
  const { validateConfigObject } = await import("../config/load.js");
  const { Agent } = await import("../agent/agent.js");
  const config = validateConfigObject(
    {
      version: 1,
      gateway: { id: "bench" },
      state_dir: dir,
      log: { level: "silent" },
      uplink: { url: "mqtt://127.0.0.1:9", reconnect_min_ms: 60_000 },
      store: { max_bytes: 2_000_000_000 },
      control: { socket: join(dir, "control.sock") },
      drivers: [driverBlock(ports)],
    },
    "bench",
    { env: {}, baseDir: dir },
  );
  const a = new Agent(config, { logger: pino({ level: "silent" }) });
  await a.start();
  const drv = a.drivers[0]!;
  const good = () => {
    const c = drv.status().counters ?? {};
    return (
      (c.requests ?? 0) -
      (c.timeouts ?? 0) -
      (c.exceptions ?? 0) -
      (c.frame_errors ?? 0) -
      (c.comm_errors ?? 0)
    );
  };
  return { count: good, stop: () => a.stop() };
}

async function main(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [self, "--sim"], { stdio: ["ignore", "pipe", "inherit"] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(JSON.parse(out) as number[]);
    });
    child.once("exit", (code) => reject(new Error(`simulator exited (${code})`)));
  });
  const dir = mkdtempSync(join(tmpdir(), "eclor-bench-modbus-"));
  try {
    // Interleaved rounds, summed: on a shared machine the load drifts during a run.
    const zero = (): Phase => ({ requests: 0, registers: 0, seconds: 0, cpuMs: 0 });
    const add = (a: Phase, b: Phase) => {
      a.requests += b.requests;
      a.registers += b.registers;
      a.seconds += b.seconds;
      a.cpuMs += b.cpuMs;
    };
    const [ref, drv, agt] = [zero(), zero(), zero()];
    for (let round = 0; round < ROUNDS; round++) {
      add(ref, await measure(() => bare(ports)));
      add(drv, await measure(() => driverOnly(ports)));
      add(agt, await measure(() => agent(ports, join(dir, `r${round}`))));
    }
    const rate = (p: Phase) => ({
      requests_per_s: Math.round(p.requests / p.seconds),
      registers_per_s: Math.round(p.registers / p.seconds),
      cpu_ms_per_1000_points: Number((p.cpuMs / (p.registers / 1000)).toFixed(3)),
    });
    const result = {
      bench: "modbus-poll",
      devices: DEVICES,
      registers_per_device: REGISTERS,
      seconds_per_mode: (ROUNDS * PHASE_MS) / 1000,
      agent: rate(agt),
      driver_only: rate(drv),
      reference_bare_modbus_serial: rate(ref),
      ratio: Number((agt.registers / agt.seconds / (ref.registers / ref.seconds)).toFixed(3)),
      driver_only_ratio: Number(
        (drv.registers / drv.seconds / (ref.registers / ref.seconds)).toFixed(3),
      ),
      goal_ratio: 0.8,
      note: "cpu_ms_per_1000_points = CPU ms of the polling process per 1,000 points = CPU ms/s per 1,000 points/s; the simulator runs in a child process",
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

async function simChild(): Promise<void> {
  const { ModbusSimulator, counting } = await import("../sim/modbus/index.js");
  const sim = new ModbusSimulator();
  const u = sim.addUnit(1);
  u.behaviour = counting(u.bank, REGISTERS);
  sim.startTicking();
  const ports: number[] = [];
  for (let i = 0; i < DEVICES; i++) ports.push(await sim.listenTcp(0));
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  process.on("SIGTERM", () => void sim.close().then(() => process.exit(0)));
}

// Dispatch last: the helpers above must be initialised before top-level await runs them.
if (process.argv[2] === "--sim") await simChild();
else await main();
