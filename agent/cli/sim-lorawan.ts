/**
 * `eclor-edge sim lorawan`: simulated LoRa concentrators (Semtech UDP packet forwarder) and end
 * devices that join over the air and report periodically, against a running agent.
 */
import type { Command } from "commander";
import { fail, usage } from "./output.js";

interface LorawanOpts {
  server: string;
  gateways: string;
  devices: string;
  kind: string;
  interval: string;
  count?: string;
  abp?: boolean;
  seed: string;
  protocol: string;
  confirmed?: boolean;
  printConfig?: boolean;
  json?: boolean;
}

function int(flag: string, s: string, min: number, max: number): number {
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max)
    throw usage(`${flag}: expected a whole number ${min}..${max}, got "${s}"`);
  return Number(s);
}

export function registerSimLorawanCommand(sim: Command): void {
  sim
    .command("lorawan")
    .description(
      "Simulated LoRa concentrators and end devices (OTAA join, encrypted uplinks, downlinks) sending real UDP to the agent",
    )
    .option(
      "--server <host:port>",
      "where the agent's LoRaWAN driver listens (listen.host/port)",
      "127.0.0.1:1700",
    )
    .option(
      "--gateways <n>",
      "concentrators hearing every device (copies are deduplicated by the agent)",
      "1",
    )
    .option("--devices <n>", "simulated end devices", "3")
    .option(
      "--kind <list>",
      "device kinds, comma-separated, assigned in turn: co2, people, water",
      "co2,people,water",
    )
    .option("--interval <duration>", 'time between uplinks of one device, e.g. "10s"', "10s")
    .option("--count <n>", "uplinks per device, then stop (default: until interrupted)")
    .option("--abp", "activation by personalisation instead of OTAA joins")
    .option("--seed <text>", "derives the device EUIs and keys (same seed, same devices)", "eclor")
    .option("--protocol <1|2>", "packet-forwarder protocol version", "2")
    .option("--confirmed", "send confirmed uplinks (the agent must ACK them)")
    .option("--print-config", "print the agent's driver block for these devices (YAML) and exit")
    .option("--json", "one JSON object per line on stdout instead of text on stderr")
    .addHelpText(
      "after",
      `
Example (two terminals):
  eclor-edge sim lorawan --devices 3 --print-config > lorawan.yaml   # paste into the agent config
  eclor-edge sim lorawan --server 127.0.0.1:1700 --devices 3 --interval 10s
`,
    )
    .action(async (opts: LorawanOpts) => {
      try {
        const m = /^(.+):(\d{1,5})$/.exec(opts.server);
        if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
          throw usage(`--server: expected host:port, e.g. 127.0.0.1:1700, got "${opts.server}"`);
        const kinds = opts.kind.split(",").map((k) => k.trim());
        for (const k of kinds)
          if (k !== "co2" && k !== "people" && k !== "water")
            throw usage(`--kind: expected co2, people or water (comma-separated), got "${k}"`);
        if (opts.protocol !== "1" && opts.protocol !== "2")
          throw usage(`--protocol: expected 1 or 2, got "${opts.protocol}"`);
        const { duration } = await import("../../config/common.js");
        const iv = duration.safeParse(opts.interval);
        if (!iv.success || iv.data < 100)
          throw usage(
            `--interval: expected a duration of at least 100ms like "10s", got "${opts.interval}"`,
          );
        const devices = int("--devices", opts.devices, 1, 1000);
        const gateways = int("--gateways", opts.gateways, 1, 16);
        const count =
          opts.count !== undefined ? int("--count", opts.count, 1, 1_000_000) : undefined;
        const sim = await import("../../sim/lorawan/run.js");
        const common = {
          devices,
          kinds: kinds as ("co2" | "people" | "water")[],
          seed: opts.seed,
          abp: opts.abp === true,
        };
        if (opts.printConfig) {
          process.stdout.write(sim.driverBlock({ ...common, port: Number(m[2]) }));
          return;
        }
        const log = opts.json
          ? (l: Record<string, unknown>) =>
              process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), ...l })}\n`)
          : (l: Record<string, unknown>) => {
              const { event, device, ...rest } = l;
              const who = typeof device === "string" ? `${device} ` : "";
              process.stderr.write(
                `sim lorawan: ${who}${typeof event === "string" ? event : "?"} ${JSON.stringify(rest)}\n`,
              );
            };
        const run = sim.runLorawanSim({
          ...common,
          server: { host: m[1]!, port: Number(m[2]) },
          gateways,
          intervalMs: iv.data,
          ...(count !== undefined ? { count } : {}),
          version: opts.protocol === "1" ? 1 : 2,
          confirmed: opts.confirmed === true,
          log,
        });
        const stop = () => void run.stop().then(() => process.exit(0));
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        await run.done;
      } catch (e) {
        fail(e, opts.json);
      }
    });
}
