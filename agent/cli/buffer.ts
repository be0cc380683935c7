/**
 * `eclor-edge buffer stats|export|purge`: the local store (outbox and history) as seen by the
 * running agent. Export streams a time range as JSON Lines or CSV; purge asks first.
 */
import { createWriteStream } from "node:fs";
import { createInterface } from "node:readline/promises";
import type { Writable } from "node:stream";
import type { Command } from "commander";
import type { BufferStats, PurgeResult, StoredReading } from "../control/backend.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { type AgentOptions, withAgent, withAgentOptions } from "./agent-conn.js";
import { ago, bytes, parseTime, timestamp } from "./format.js";
import { fail, green, printJson, usage, yellow } from "./output.js";

export function renderStats(s: BufferStats, now = Date.now()): string {
  const lines = [
    `store      ${s.path}`,
    `size       ${bytes(s.bytes)} of ${bytes(s.maxBytes)} (${((100 * s.bytes) / s.maxBytes).toFixed(1)} %)`,
    `unsent     ${s.unsent}${s.oldestUnsentTs ? ` (oldest ${timestamp(s.oldestUnsentTs)}, ${ago(s.oldestUnsentTs, now)})` : ""}`,
    `history    ${s.history}${s.oldestHistoryTs ? ` (since ${timestamp(s.oldestHistoryTs)})` : ""}`,
    `gaps       ${s.gaps === 0 ? "none" : yellow(`${s.gaps} (${s.droppedReadings} reading(s) dropped when the store was full)`)}`,
  ];
  if (s.lastSeq !== undefined) lines.push(`last seq   ${s.lastSeq}`);
  return lines.join("\n");
}

const CSV_COLUMNS = [
  "seq",
  "ts",
  "time",
  "device",
  "point",
  "value",
  "unit",
  "quality",
  "detail",
] as const;

function csvField(v: string | number | boolean | null | undefined): string {
  if (v === undefined || v === null) return "";
  const s = String(v);
  // RFC 4180: quote fields with separators, quotes or line breaks; double the quotes.
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRow(r: StoredReading): string {
  const rec: Record<(typeof CSV_COLUMNS)[number], string | number | boolean | null | undefined> = {
    seq: r.seq,
    ts: r.ts,
    time: new Date(r.ts).toISOString(),
    device: r.device,
    point: r.point,
    value: r.value,
    unit: r.unit,
    quality: r.quality,
    detail: r.detail,
  };
  return CSV_COLUMNS.map((c) => csvField(rec[c])).join(",");
}

function timeOption(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = parseTime(text);
  if (t === undefined) {
    throw usage(
      `${name}: expected a date/time like 2026-11-25T08:00, epoch ms, or an age like 2h or 7d; got "${text}"`,
    );
  }
  return t;
}

interface ExportOptions extends AgentOptions {
  from?: string;
  to?: string;
  device?: string;
  point?: string;
  format: string;
  output?: string;
}

interface PurgeOptions extends AgentOptions {
  before?: string;
  yes?: boolean;
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function registerBufferCommands(program: Command): void {
  const buffer = program.command("buffer").description("Inspect, export or purge the local store");

  withAgentOptions(
    buffer
      .command("stats")
      .description("Size, unsent readings, history and gaps of the store")
      .option("--json", "machine-readable output"),
  ).action(async (opts: AgentOptions) => {
    try {
      const s = await withAgent(opts, (c) => c.call<BufferStats>("buffer.stats"));
      if (opts.json) printJson(s);
      else process.stdout.write(`${renderStats(s)}\n`);
    } catch (e) {
      fail(e, opts.json);
    }
  });

  withAgentOptions(
    buffer
      .command("export")
      .description("Export stored readings of a time range as JSON Lines (default) or CSV")
      .option("--from <time>", "from this time (2026-11-25T08:00, epoch ms, or an age like 2h)")
      .option("--to <time>", "up to this time (same forms)")
      .option("-d, --device <device>", "only this device")
      .option("-p, --point <point>", "only this point")
      .option("-f, --format <format>", "jsonl or csv", "jsonl")
      .option("-o, --output <file>", "write to this file instead of stdout"),
  ).action(async (opts: ExportOptions) => {
    try {
      if (opts.format !== "jsonl" && opts.format !== "csv")
        throw usage(`--format: expected jsonl or csv, got "${opts.format}"`);
      const from = timeOption("--from", opts.from);
      const to = timeOption("--to", opts.to);
      if (from !== undefined && to !== undefined && from > to)
        throw usage("--from: must be before --to");
      const params = {
        ...(from !== undefined ? { from } : {}),
        ...(to !== undefined ? { to } : {}),
        ...(opts.device ? { device: opts.device } : {}),
        ...(opts.point ? { point: opts.point } : {}),
      };
      const out: Writable = opts.output ? createWriteStream(opts.output) : process.stdout;
      if (opts.format === "csv") out.write(`${CSV_COLUMNS.join(",")}\n`);
      const result = await withAgent(
        opts,
        (c) =>
          c.stream<StoredReading[]>("buffer.export", params, (rows) => {
            out.write(
              rows.map((r) => (opts.format === "csv" ? csvRow(r) : JSON.stringify(r))).join("\n") +
                "\n",
            );
          }).done,
      );
      if (opts.output) {
        await new Promise<void>((resolve, reject) =>
          out.end((err?: Error | null) => (err ? reject(err) : resolve())),
        );
        process.stderr.write(
          `${(result as { count: number }).count} reading(s) written to ${opts.output}\n`,
        );
      }
    } catch (e) {
      fail(e);
    }
  });

  withAgentOptions(
    buffer
      .command("purge")
      .description(
        "Delete history: records the hypervisor already acknowledged (unsent readings are never purged)",
      )
      .option(
        "--before <time>",
        "only records acquired before this time (date, epoch ms or age like 7d)",
      )
      .option("-y, --yes", "do not ask for confirmation")
      .option("--json", "machine-readable output"),
  ).action(async (opts: PurgeOptions) => {
    try {
      const before = timeOption("--before", opts.before);
      await withAgent(opts, async (c) => {
        if (!opts.yes) {
          if (!process.stdin.isTTY) {
            throw new EdgeError(
              ErrorCode.UsageError,
              "refusing to purge without confirmation: run in a terminal, or add --yes",
            );
          }
          const s = await c.call<BufferStats>("buffer.stats");
          const what = `${s.history} sent record(s)${before !== undefined ? ` acquired before ${timestamp(before)}` : ""}`;
          if (!(await confirm(`Delete up to ${what} from ${s.path}?`))) {
            throw new EdgeError(ErrorCode.UsageError, "purge cancelled: nothing deleted");
          }
        }
        const r = await c.call<PurgeResult>("buffer.purge", before !== undefined ? { before } : {});
        if (opts.json) printJson(r);
        else
          process.stdout.write(
            `${green("ok")} deleted ${r.deleted} sent record(s); unsent readings are kept\n`,
          );
      });
    } catch (e) {
      fail(e, opts.json);
    }
  });
}
