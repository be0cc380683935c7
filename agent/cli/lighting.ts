/**
 * `eclor-edge lighting show [--date D] [--json]`: the night's plan per group (times, levels, why)
 * and the current override; `eclor-edge lighting override GROUP [LEVEL] --for 2h`: an override
 * from the technician (no LEVEL ends it). Both go through the running agent's command service
 * (cmd/lighting/get and cmd/lighting/override as the local technician): one validator, one audit.
 */
import type { Command } from "commander";
import { EdgeError, ErrorCode, type ErrorCodeValue } from "../../core/errors.js";
import { type AgentOptions, withAgent, withAgentOptions } from "./agent-conn.js";
import { table } from "./format.js";
import { bold, dim, fail, green, printJson, yellow } from "./output.js";

interface Response {
  ok: boolean;
  result?: unknown;
  error?: { code: string; ecode: number; message: string; details?: Record<string, unknown> };
}

interface PlanView {
  night: string;
  time_zone: string;
  version: number | null;
  source: string;
  sun: Record<string, number | null>;
  clock: { trusted: boolean; reason: string };
  groups: {
    id: string;
    level: number | null;
    source: string;
    reason: string;
    program: string | null;
    plan: { local: string; level: number; ramp_s: number; why: string }[];
    override: {
      level: number;
      expires: number | null;
      until_next_event: boolean;
      who: string;
      reason: string | null;
    } | null;
  }[];
}

async function run(
  opts: AgentOptions,
  name: string,
  body: Record<string, unknown>,
): Promise<unknown> {
  const r = await withAgent(opts, (c) => c.call<Response>("command", { name, body }));
  if (!r.ok)
    throw new EdgeError(
      (r.error?.ecode ?? ErrorCode.CommandFailed) as ErrorCodeValue,
      r.error?.message ?? "failed",
      r.error?.details,
    );
  return r.result;
}

function localTime(ms: number | null, tz: string): string {
  if (ms === null) return "—";
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: tz,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(ms);
}

export function renderPlan(v: PlanView): string {
  const tz = v.time_zone;
  const out = [
    `${bold("Lighting")}  night of ${v.night} (${tz}) · ${v.version === null ? "local file" : `v${v.version} (${v.source})`} · clock ${v.clock.trusted ? green("trusted") : yellow(`NOT TRUSTED: ${v.clock.reason}`)}`,
    `${bold("Sun")}       sunset ${localTime(v.sun.sunset ?? null, tz)} · civil dusk ${localTime(v.sun.civil_dusk ?? null, tz)} · civil dawn ${localTime(v.sun.civil_dawn ?? null, tz)} · sunrise ${localTime(v.sun.sunrise ?? null, tz)}`,
  ];
  for (const g of v.groups) {
    out.push("");
    out.push(
      `${bold(g.id)}  now ${g.level === null ? "?" : `${g.level} %`} — ${g.source}: ${g.reason}`,
    );
    const o = g.override;
    if (o)
      out.push(
        `  ${yellow("override")} ${o.level} % by ${o.who}${o.reason ? ` (${o.reason})` : ""} ${o.until_next_event ? "until the next program event" : `until ${localTime(o.expires, tz)}`}`,
      );
    out.push(
      table(
        ["TIME", "LEVEL", "RAMP", "WHY"],
        g.plan.map((e) => [e.local, `${e.level} %`, e.ramp_s ? `${e.ramp_s} s` : "-", e.why]),
        "  ",
      ),
    );
  }
  if (v.groups.length === 0) out.push(dim("no lighting groups configured"));
  return out.join("\n");
}

export function registerLightingCommands(program: Command): void {
  const l = program.command("lighting").description("Street lighting: tonight's plan, overrides");
  withAgentOptions(
    l
      .command("show")
      .description("The night's plan per group (times, levels, why) and the current overrides")
      .option("--date <YYYY-MM-DD>", "the night of this evening (default: tonight)")
      .option("--group <id>", "only this group")
      .option("--json", "machine-readable output"),
  ).action(async (opts: AgentOptions & { date?: string; group?: string }) => {
    try {
      if (opts.date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(opts.date))
        throw new EdgeError(
          ErrorCode.UsageError,
          `--date: expected YYYY-MM-DD, got "${opts.date}"`,
        );
      const v = (await run(opts, "lighting/get", {
        ...(opts.date ? { date: opts.date } : {}),
        ...(opts.group ? { group: opts.group } : {}),
      })) as PlanView;
      if (opts.json) printJson(v);
      else process.stdout.write(`${renderPlan(v)}\n`);
    } catch (e) {
      fail(e, opts.json);
    }
  });
  withAgentOptions(
    l
      .command("override <group> [level]")
      .description(
        'Hold GROUP ("*" for all) at LEVEL % until the end given; without LEVEL, end the override',
      )
      .option("--for <duration>", 'how long, e.g. "2h", "30m" (at most 7d)')
      .option("--until-next-event", "until the next event of the group's program")
      .option("--reason <text>", "why (kept in the events and the audit)")
      .option("--json", "machine-readable output"),
  ).action(
    async (
      group: string,
      level: string | undefined,
      opts: AgentOptions & { for?: string; untilNextEvent?: boolean; reason?: string },
    ) => {
      try {
        const n = level === undefined ? undefined : Number(level);
        if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > 100))
          throw new EdgeError(
            ErrorCode.UsageError,
            `LEVEL: expected an integer 0..100 (%), got "${level}"`,
          );
        if (n !== undefined && !opts.for && !opts.untilNextEvent)
          throw new EdgeError(
            ErrorCode.UsageError,
            "an override needs an end: --for 2h or --until-next-event",
          );
        const r = (await run(opts, "lighting/override", {
          group,
          ...(n !== undefined ? { level: n } : {}),
          ...(opts.for ? { for: opts.for } : {}),
          ...(opts.untilNextEvent ? { until_next_event: true } : {}),
          ...(opts.reason ? { reason: opts.reason } : {}),
        })) as { groups: { id: string; level: number | null; override: unknown }[] };
        if (opts.json) printJson(r);
        else
          for (const g of r.groups)
            process.stdout.write(
              `${g.id}: ${g.override ? `override at ${n} %` : "override ended, the program applies"} (lamps at ${g.level ?? "?"} %)\n`,
            );
      } catch (e) {
        fail(e, opts.json);
      }
    },
  );
}
