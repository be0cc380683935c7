/**
 * `npm run demo` (node dist/sim/demo.js): broker, simulators (Modbus and LoRaWAN) and agent
 * start, the live view shows what the hypervisor receives — including the LoRaWAN devices' join
 * and decoded uplinks, and the demo's own `cmd/write` with its response — and the demo stops
 * cleanly (exit 0), here after --duration.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const demo = fileURLToPath(new URL("../../dist/sim/demo.js", import.meta.url));
const main = fileURLToPath(new URL("../../dist/agent/main.js", import.meta.url));

describe("npm run demo", () => {
  it(
    "shows telemetry and events from the simulated cabinet and sensors, a command, then stops cleanly",
    { timeout: 90_000 },
    async () => {
      // 8 s: a LoRaWAN Join Accept comes 5 s after the Join Request (JOIN_ACCEPT_DELAY1), so the
      // first uplink is decoded after ~5.5 s; the rest is room for a loaded machine.
      const { stdout } = await promisify(execFile)(process.execPath, [demo, "--duration", "8"], {
        timeout: 60_000,
        env: { ...process.env, NO_COLOR: "1" },
      });
      expect(stdout).toMatch(/event device_online compteur answers/);
      expect(stdout).toMatch(/telemetry #\d+-\d+ compteur: voltage_l1 2\d\d(\.\d+)? V/);
      expect(stdout).toMatch(/dali-rue-gare: lamp0_level 100 %/);
      // LoRaWAN: OTAA join, then an uplink decoded by the AM103 codec, with the link quality.
      expect(stdout).toMatch(/event lorawan_join joined \(DevAddr [0-9a-f]{8}/);
      const co2 = /telemetry #\d+-\d+ co2-salle-conseil: (.*)/.exec(stdout)?.[1] ?? "";
      expect(co2).toMatch(/\bco2 \d+ ppm\b/);
      expect(co2).toMatch(/\btemperature \d+(\.\d+)? Cel\b/);
      expect(co2).toMatch(/\bhumidity \d+(\.\d+)? %RH/);
      expect(co2).toMatch(/\brssi -\d+ dBm · snr -?\d+(\.\d+)? dB\b/);
      // The hypervisor's write (after 4 s): its response, then the new level in the telemetry.
      expect(stdout).toMatch(
        /response write \{"id":"demo-dim-1","ok":true,.*"point":"lamp0_level","value":30,"ok":true,"read_back":30/,
      );
      expect(stdout).toMatch(/dali-rue-gare: lamp0_level 30 %/);
      expect(stdout).not.toMatch(/lorawan simulator:/);
      expect(stdout).toMatch(/state \{"online":false,"reason":"shutdown"/);
      expect(stdout.trimEnd().endsWith("stopped.")).toBe(true);
    },
  );

  // CLI start-up is slow on a loaded 2-core machine: the three runs go in parallel, with room.
  it(
    "eclor-edge sim modbus refuses bad arguments with exit code 2 and says why",
    { timeout: 90_000 },
    async () => {
      const cases = [
        [
          ["--listen", "127.0.0.1:5020", "--device", "1:toaster"],
          /unknown kind "toaster", expected one of eastron-sdm630/,
        ],
        [["--listen", "0", "--fault", "1:explode"], /unknown fault "explode"/],
        [[], /nothing to serve/],
      ] as const;
      const results = await Promise.all(
        cases.map(
          ([args]) =>
            promisify(execFile)(process.execPath, [main, "sim", "modbus", ...args], {
              timeout: 60_000,
            }).catch((x: unknown) => x) as Promise<{
              code?: number;
              stderr?: string;
            }>,
        ),
      );
      cases.forEach(([args, re], i) => {
        expect(results[i]!.code, args.join(" ")).toBe(2);
        expect(results[i]!.stderr).toMatch(re);
      });
    },
  );
});
