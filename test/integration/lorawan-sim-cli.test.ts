/**
 * `eclor-edge sim lorawan` as a user runs it: its printed driver block configures the driver, and
 * the simulator process joins over UDP and its uplinks are decoded by the agent's codecs.
 */
import { spawn, spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { lorawanDriverSchema } from "../../drivers/lorawan/schema.js";
import { createLorawanDriver, type LorawanDriver } from "../../drivers/lorawan/index.js";
import { recorder } from "../helpers/lorawan.js";
import { waitFor } from "../helpers/ports.js";

const main = new URL("../../dist/agent/main.js", import.meta.url).pathname;
let driver: LorawanDriver | undefined;
afterAll(async () => driver?.stop());

describe("eclor-edge sim lorawan", () => {
  it("refuses bad arguments with exit code 2", () => {
    const r = spawnSync(process.execPath, [main, "sim", "lorawan", "--kind", "parking"], {
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--kind: expected co2, people or water/);
  });

  it("joins and reports to a driver configured from its --print-config", async () => {
    const args = ["--devices", "2", "--kind", "co2,water", "--seed", "cli-test"];
    const printed = spawnSync(
      process.execPath,
      [main, "sim", "lorawan", ...args, "--print-config"],
      { encoding: "utf8" },
    );
    expect(printed.status).toBe(0);
    const block = (parse(printed.stdout) as { drivers: Record<string, unknown>[] }).drivers[0]!;
    const rec = recorder();
    driver = createLorawanDriver(
      lorawanDriverSchema.parse({ ...block, listen: { host: "127.0.0.1", port: 0 } }),
      rec.ctx,
    );
    await driver.start();
    const child = spawn(
      process.execPath,
      [
        main,
        "sim",
        "lorawan",
        ...args,
        "--server",
        `127.0.0.1:${driver.port()}`,
        "--count",
        "2",
        "--interval",
        "200ms",
        "--json",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(0);
    const lines = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(new Set(lines.filter((l) => l.event === "joined").map((l) => l.device)).size).toBe(2);
    expect(lines.filter((l) => l.event === "uplink")).toHaveLength(4);
    await waitFor(
      () => rec.readings.filter((r) => r.point === "co2" || r.point === "volume").length === 4,
      5000,
      "decoded readings",
    );
    expect(rec.readings.find((r) => r.device === "sim-co2-1" && r.point === "co2")).toMatchObject({
      unit: "ppm",
      quality: "good",
    });
    expect(
      rec.readings.find((r) => r.device === "sim-water-2" && r.point === "volume"),
    ).toMatchObject({ unit: "m3", quality: "good", value: 20 });
    // Both devices joined (a device that missed its Join Accept on a loaded machine joins again).
    expect(
      new Set(rec.events.filter((e) => e.type === "lorawan_join").map((e) => e.device)),
    ).toEqual(new Set(["sim-co2-1", "sim-water-2"]));
  }, 60_000); // two OTAA joins (5 s Join Accept delay) and four uplinks with their RX windows
});
