/** `eclor-edge status`: is the box healthy? Uplink, store, each driver and device. */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { EdgeError, ErrorCode, isEdgeError } from "../../core/errors.js";
import type { StatusView } from "../control/backend.js";
import { type AgentOptions, withAgent, withAgentOptions } from "./agent-conn.js";
import { ago, bytes, duration, table, timestamp } from "./format.js";
import { bold, dim, fail, green, printJson, red, yellow } from "./output.js";

export function renderStatus(s: StatusView): string {
  const out: string[] = [];
  const gw = s.gateway.name ? `${s.gateway.id} (${s.gateway.name})` : s.gateway.id;
  out.push(
    `${bold("Gateway")}  ${gw} · agent ${s.version} · pid ${s.pid} · up ${duration(s.now - s.startedAt)}`,
  );

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
      : `backlog ${u.backlog}${u.backlogOldestTs ? ` (oldest ${ago(u.backlogOldestTs, s.now)})` : ""}`;
  out.push(
    `${bold("Uplink")}   ${link} ${u.connected ? "to" : "from"} ${u.broker} · last publish ${ago(u.lastPublishTs, s.now)} · ${backlog}`,
  );
  if (u.lastError) out.push(`         ${yellow(`last error: ${u.lastError}`)}`);

  const st = s.store;
  const unsent =
    st.unsent === 0 ? "0 unsent" : `${st.unsent} unsent (oldest ${ago(st.oldestUnsentTs, s.now)})`;
  const gaps =
    st.gaps === 0
      ? "no gaps"
      : yellow(`${st.gaps} gap(s), ${st.droppedReadings} reading(s) dropped`);
  out.push(
    `${bold("Store")}    ${st.path} · ${bytes(st.bytes)} of ${bytes(st.maxBytes)} · ${unsent} · ${gaps}`,
  );
  if (st.error) out.push(`         ${red(st.error)}`);

  if (s.drivers.length === 0) {
    out.push(`${bold("Drivers")}  none configured`);
    return out.join("\n");
  }
  out.push(bold("Drivers"));
  for (const d of s.drivers) {
    const state = d.running ? green("running") : red("STOPPED");
    out.push(`  ${d.id} (${d.kind}) ${state}${d.detail ? ` — ${d.detail}` : ""}`);
    if (d.devices.length === 0) {
      out.push(dim("    no devices"));
      continue;
    }
    const rows = d.devices.map((dev) => [
      dev.id,
      dev.online ? green("online") : red("OFFLINE"),
      ago(dev.lastGoodTs, s.now),
      String(dev.errorCount),
      dev.lastError
        ? `${dev.lastError}${dev.lastErrorTs ? dim(` (${ago(dev.lastErrorTs, s.now)})`) : ""}`
        : "",
    ]);
    out.push(table(["DEVICE", "STATE", "LAST GOOD", "ERRORS", "LAST ERROR"], rows, "    "));
  }
  out.push(dim(`as of ${timestamp(s.now)}`));
  return out.join("\n");
}

export function registerStatusCommand(program: Command): void {
  withAgentOptions(
    program
      .command("status")
      .description(
        "Health of the running agent: enrolment (when provisioned), uplink, store, drivers and devices",
      )
      .option("--json", "machine-readable output"),
  ).action(async (opts: AgentOptions) => {
    try {
      const s = await withAgent(opts, (c) => c.call<StatusView>("status"));
      if (opts.json) printJson(s);
      else process.stdout.write(`${renderStatus(s)}\n`);
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
