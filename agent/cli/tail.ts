/**
 * `eclor-edge tail`: readings (and events) as the agent stores them, like `mosquitto_sub -v`.
 * One line per item; `--json` prints one JSON object per line (JSON Lines) for `jq`.
 * Runs until Ctrl-C, or until `--count` items have been printed.
 */
import type { Command } from "commander";
import type { TailItem } from "../control/backend.js";
import { type AgentOptions, withAgent, withAgentOptions } from "./agent-conn.js";
import { clock, formatQuality, formatValue } from "./format.js";
import { bold, fail, red, usage, yellow } from "./output.js";

export function renderTailItem(item: TailItem | { kind: "skipped"; count: number }): string {
  switch (item.kind) {
    case "reading": {
      const r = item.reading;
      const q = r.quality === "good" ? "" : `  ${formatQuality(r.quality, r.detail)}`;
      return `${clock(r.ts)}  ${r.device}/${r.point}  ${formatValue(r)}${q}`;
    }
    case "event": {
      const e = item.event;
      const sev =
        e.severity === "error"
          ? red("ERROR")
          : e.severity === "warning"
            ? yellow("WARN ")
            : "INFO ";
      return `${clock(e.ts)}  ${bold("event")} ${sev} ${e.type}${e.device ? ` ${e.device}` : ""}: ${e.message}`;
    }
    case "skipped":
      return yellow(
        `… ${item.count} item(s) skipped: this terminal reads slower than the agent stores`,
      );
  }
}

interface TailOptions extends AgentOptions {
  device?: string;
  events?: boolean;
  eventsOnly?: boolean;
  count?: string;
}

export function registerTailCommand(program: Command): void {
  withAgentOptions(
    program
      .command("tail")
      .description("Follow readings as they are stored (Ctrl-C to stop)")
      .option("-d, --device <device>", "only this device")
      .option("-e, --events", "also show events (device online/offline, gaps, writes…)")
      .option("--events-only", "only events")
      .option("-n, --count <n>", "stop after n lines")
      .option("--json", "one JSON object per line (JSON Lines)"),
  ).action(async (opts: TailOptions) => {
    try {
      let limit = Infinity;
      if (opts.count !== undefined) {
        limit = Number(opts.count);
        if (!Number.isSafeInteger(limit) || limit < 1)
          throw usage(`--count: expected a positive integer, got "${opts.count}"`);
      }
      await withAgent(opts, async (c) => {
        let seen = 0;
        const params = {
          ...(opts.device ? { device: opts.device } : {}),
          events: Boolean(opts.events || opts.eventsOnly),
          readings: !opts.eventsOnly,
        };
        let stop: () => void = () => undefined;
        const stopped = new Promise<void>((resolve) => (stop = resolve));
        const s = c.stream<TailItem>("tail", params, (item) => {
          if (seen >= limit) return;
          seen++;
          process.stdout.write(`${opts.json ? JSON.stringify(item) : renderTailItem(item)}\n`);
          if (seen >= limit) stop();
        });
        const onSignal = () => stop();
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        try {
          // The stream only ends early with an error (unknown device, agent stopped).
          await Promise.race([s.done, stopped]);
          await s.cancel().catch(() => undefined);
        } finally {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
      });
    } catch (e) {
      fail(e, opts.json);
    }
  });
}
