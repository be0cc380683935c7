import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "drivers/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real brokers, ptys and child processes; on a 2-core machine
    // too many at once starve each other's timers.
    maxWorkers: 3,
  },
});
