/**
 * Benchmark (issue 15 item 2): acquisition while the disk is full. A paced producer feeds the
 * pipeline the way drivers do (a batch every 10 ms, TARGET readings/s) for SECONDS; we measure
 * the readings it actually got to emit and the CPU the process used, (a) with the store on a
 * tmpfs with room, and (b) with the store on a tmpfs that is full (every append buffered, the
 * store retrying every retry_ms, memory bounded by memory_max). Reference = (a) in the same run.
 * Goal: the acquisition rate while full is at least 90 % of the rate with room.
 * Needs root (it mounts two tmpfs); prints {"skipped": …} otherwise.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { configSchema } from "../config/schema.js";
import type { Reading } from "../drivers/driver.js";
import { Pipeline } from "../agent/pipeline/index.js";
import { Store } from "../agent/store/store.js";

const TARGET = 20_000; // readings/s: 200 per 10 ms tick
const SECONDS = 4;
const ROUNDS = 3;
const defaults = configSchema.parse({
  version: 1,
  gateway: { id: "bench" },
  uplink: { url: "mqtt://127.0.0.1:1" },
}).store;

function batch(offset: number, n: number): Reading[] {
  const ts = Date.now();
  const out: Reading[] = [];
  for (let i = 0; i < n; i++)
    out.push({
      device: `meter${(offset + i) % 50}`,
      point: "active_power",
      ts,
      value: (offset + i) * 0.5,
      unit: "W",
      quality: "good",
    });
  return out;
}

async function acquire(full: boolean): Promise<{ rate: number; cpu: number }> {
  const dir = mkdtempSync(join(tmpdir(), "eclor-bench-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", dir]);
  try {
    const store = new Store({
      ...defaults,
      path: join(dir, "store.db"),
      logger: pino({ level: "silent" }),
    }).open();
    if (full) {
      // Fill the disk with unsent readings (nothing to evict), then a filler file for the rest.
      let n = 0;
      do store.appendReadings(batch(n, 5000));
      while (store.flush() && (n += 5000) < 10_000_000);
      try {
        writeFileSync(join(dir, "filler"), Buffer.alloc(24 << 20));
      } catch {
        // ENOSPC: the disk is full, as wanted
      }
      if (store.available && store.error === undefined) throw new Error("the disk did not fill");
    }
    const pipeline = new Pipeline(
      new Map(),
      (r) => store.appendReadings(r),
      pino({ level: "silent" }),
    );
    const perTick = TARGET / 100;
    let emitted = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        pipeline.ingest(batch(emitted, perTick));
        emitted += perTick;
        if (performance.now() - t0 >= SECONDS * 1000) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    const s = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(cpu0);
    store.close();
    return { rate: emitted / s, cpu: (used.user + used.system) / 1e6 / s };
  } finally {
    execFileSync("umount", ["-l", dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return {
    min: Math.round(s[0]!),
    median: Math.round(s[Math.floor(s.length / 2)]!),
    max: Math.round(s[s.length - 1]!),
  };
};

if (process.getuid?.() !== 0) {
  process.stdout.write(
    `${JSON.stringify({ bench: "store-full", skipped: "needs root to mount a tmpfs" })}\n`,
  );
} else {
  const room: { rate: number; cpu: number }[] = [];
  const fullRuns: { rate: number; cpu: number }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    room.push(await acquire(false));
    fullRuns.push(await acquire(true));
  }
  const ratios = fullRuns.map((f, i) => f.rate / room[i]!.rate);
  const ratio = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
  process.stdout.write(
    `${JSON.stringify({
      bench: "store-full",
      target_readings_per_s: TARGET,
      seconds: SECONDS,
      rounds: ROUNDS,
      full_disk: {
        readings_per_s: stats(fullRuns.map((x) => x.rate)),
        cpu_share: fullRuns.map((x) => Number(x.cpu.toFixed(3))),
      },
      reference: {
        what: "same paced producer, store on a tmpfs with room (same run)",
        readings_per_s: stats(room.map((x) => x.rate)),
        cpu_share: room.map((x) => Number(x.cpu.toFixed(3))),
      },
      ratio_median: Number(ratio.toFixed(3)),
      ratios: ratios.map((x) => Number(x.toFixed(3))),
      goal: { ratio: 0.9 },
      pass: ratio >= 0.9,
    })}\n`,
  );
}
