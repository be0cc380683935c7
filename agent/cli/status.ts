/**
 * `eclor-edge status`: is the box healthy? The health first (ok / degraded / failed, with the
 * reasons in plain words), then uplink, store, each driver and device. The object is the one
 * status view (agent/health/schema.ts), the same as the MQTT `status` command's result.
 *
 * Exit codes (the container HEALTHCHECK runs `eclor-edge status --json`): 0 healthy, 1 degraded
 * or failed (the reasons are printed) or the agent cannot be reached
 * (on the gateway image before enrolment: "waiting for a provisioning bundle"), 2 bad usage.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { EdgeError, ErrorCode, isEdgeError } from "../../core/errors.js";
import type { StatusView } from "../control/backend.js";
import { type AgentOptions, withAgent, withAgentOptions } from "./agent-conn.js";
import { ago, bytes, duration, table, timestamp } from "./format.js";
import { bold, dim, fail, green, printJson, red, yellow } from "./output.js";

/** View times are seconds (docs/mqtt-api.md §1); the formatters take ms. */
const ms = (s: number | undefined): number | undefined => (s === undefined ? undefined : s * 1000);

export function renderStatus(s: StatusView): string {
  const out: string[] = [];
  const now = s.now * 1000;
  const gw = s.gateway.name ? `${s.gateway.id} (${s.gateway.name})` : s.gateway.id;
  out.push(
    `${bold("Gateway")}  ${gw} · agent ${s.version} · pid ${s.pid} · up ${duration(now - Date.parse(s.started_at))}`,
  );
  const colourOf = { ok: green, degraded: yellow, failed: red } as const;
  out.push(`${bold("Health")}   ${colourOf[s.status](s.status.toUpperCase())}`);
  for (const r of s.reasons) out.push(`         ${colourOf[r.severity](r.message)}`);

  if (s.provisioning) {
    const colour = s.provisioning.attention
      ? red
      : s.provisioning.status === "enrolled"
        ? green
        : yellow;
    out.push(`${bold("Enrolment")} ${colour(s.provisioning.summary)}`);
  }

  const u = s.uplink;
  const link = u.connected ? green("connected") : red("DISCONNECTED");
  const backlog =
    u.backlog === 0
      ? "backlog 0"
      : `backlog ${u.backlog}${u.backlog_oldest_ts ? ` (oldest ${ago(ms(u.backlog_oldest_ts), now)})` : ""}`;
  out.push(
    `${bold("Uplink")}   ${link} ${u.connected ? "to" : "from"} ${u.broker} · last publish ${ago(ms(u.last_publish_ts), now)} · ${backlog}`,
  );
  if (u.last_error) out.push(`         ${yellow(`last error: ${u.last_error}`)}`);

  const st = s.store;
  const unsent =
    st.unsent === 0
      ? "0 unsent"
      : `${st.unsent} unsent (oldest ${ago(ms(st.oldest_unsent_ts), now)})`;
  const gaps =
    st.gaps === 0
      ? "no gaps"
      : yellow(`${st.gaps} gap(s), ${st.dropped_readings} reading(s) dropped`);
  out.push(
    `${bold("Store")}    ${st.path} · ${bytes(st.bytes)} of ${bytes(st.max_bytes)} · ${unsent} · ${gaps}`,
  );
  if (st.error) out.push(`         ${red(st.error)}`);

  if (s.drivers.length === 0) {
    out.push(`${bold("Drivers")}  none configured`);
    return out.join("\n");
  }
  out.push(bold("Drivers"));
  for (const d of s.drivers) {
    const state =
      d.state === "started"
        ? green("running")
        : d.state === "failed"
          ? red("FAILED")
          : red("STOPPED");
    const why = d.state === "started" ? d.detail : (d.error ?? d.detail);
    out.push(`  ${d.id} (${d.kind}) ${state}${why ? ` — ${why}` : ""}`);
    if (d.devices.length === 0) {
      out.push(dim("    no devices"));
      continue;
    }
    const rows = d.devices.map((dev) => [
      dev.id,
      dev.online ? green("online") : red("OFFLINE"),
      ago(ms(dev.last_good_ts), now),
      String(dev.error_count),
      dev.last_error
        ? `${dev.last_error}${dev.last_error_ts ? dim(` (${ago(ms(dev.last_error_ts), now)})`) : ""}`
        : "",
    ]);
    out.push(table(["DEVICE", "STATE", "LAST GOOD", "ERRORS", "LAST ERROR"], rows, "    "));
  }
  out.push(dim(`as of ${timestamp(now)}`));
  return out.join("\n");
}

export function registerStatusCommand(program: Command): void {
  withAgentOptions(
    program
      .command("status")
      .description(
        "Health of the running agent (ok, degraded or failed, with the reasons), enrolment (when provisioned), uplink, store, drivers and devices",
      )
      .option("--json", "machine-readable output")
      .addHelpText(
        "after",
        "\nExit status: 0 when the agent is healthy (ok); 1 when it is degraded or failed (the reasons\nare printed, e.g. a driver that could not start) or cannot be reached; 2 on bad usage.\nThe container HEALTHCHECK runs `eclor-edge status --json`.",
      ),
  ).action(async (opts: AgentOptions) => {
    try {
      const s = await withAgent(opts, (c) => c.call<StatusView>("status"));
      if (opts.json) printJson(s);
      else process.stdout.write(`${renderStatus(s)}\n`);
      if (s.status !== "ok") process.exitCode = 1;
    } catch (e) {
      const waiting = isEdgeError(e) && e.code === ErrorCode.AgentNotRunning && waitingForBundle();
      fail(waiting ? new EdgeError(ErrorCode.AgentNotRunning, waiting) : e, opts.json);
    }
  });
}

/** Written by the gateway image's first-boot unit (packaging/image/firstboot.sh) while it has
 * no provisioning bundle: the agent is not running yet, on purpose. */
export const WAITING_FOR_BUNDLE = "/run/eclor-edge/waiting-for-bundle";

function waitingForBundle(): string | undefined {
  try {
    return `not enrolled yet: ${readFileSync(WAITING_FOR_BUNDLE, "utf8").trim()}`;
  } catch {
    return undefined;
  }
}
