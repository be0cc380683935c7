/**
 * The one status view (schema.ts `StatusView`) built from the running agent: the same object
 * answers the control socket's `status` (`eclor-edge status`, `--json`, the container
 * HEALTHCHECK) and the MQTT `status` command. Only public facts leave here: no internal
 * structure of the store, the uplink or a driver is passed through as it is.
 */
import type { Agent } from "../agent.js";
import { describeProvisionStatus, readProvisionStatus } from "../provision/state.js";
import { VERSION } from "../version.js";
import type { StatusView } from "./schema.js";

/** A broker URL without its user name and password. */
export function stripCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//");
  }
}

export function provisioningView(stateDir: string): NonNullable<StatusView["provisioning"]> {
  const p = readProvisionStatus(stateDir);
  return {
    status: p.status,
    summary: describeProvisionStatus(p),
    attention: p.status === "failed" || p.status === "expired" || p.renewal?.status === "failed",
  };
}

const s = (ms: number): number => ms / 1000;

export function buildStatusView(agent: Agent): StatusView {
  const config = agent.config;
  const health = agent.health.check();
  const st = agent.store.stats();
  const up = agent.uplink.status();
  const backlog = st.pending.event + st.pending.live + st.pending.backfill + st.buffered;
  const byId = new Map(health.drivers.map((d) => [d.id, d] as const));
  const statuses = agent.driverStatus();
  const drivers: StatusView["drivers"] = statuses.map((d) => {
    const h = byId.get(d.id);
    return {
      id: d.id,
      kind: d.kind,
      state: h?.state ?? (d.running ? "started" : "stopped"),
      ...(h?.error ? { error: h.error } : {}),
      ...(d.detail ? { detail: d.detail } : {}),
      devices: d.devices.map((x) => ({
        id: x.id,
        online: x.online,
        ...(x.lastGoodTs !== undefined ? { last_good_ts: s(x.lastGoodTs) } : {}),
        error_count: x.errorCount,
        ...(x.lastError !== undefined ? { last_error: x.lastError } : {}),
        ...(x.lastErrorTs !== undefined ? { last_error_ts: s(x.lastErrorTs) } : {}),
      })),
      ...(d.counters ? { counters: { ...d.counters } } : {}),
    };
  });
  // Drivers that could not even be created have no status of their own.
  for (const h of health.drivers)
    if (!statuses.some((d) => d.id === h.id))
      drivers.push({
        id: h.id,
        kind: h.kind,
        state: h.state,
        ...(h.error ? { error: h.error } : {}),
        devices: [],
      });
  const g = config.gateway;
  return {
    gateway: { id: g.id, ...(g.name ? { name: g.name } : {}) },
    version: VERSION,
    config_version: agent.uplink.configVersion,
    pid: process.pid,
    started_at: new Date(agent.startedAt).toISOString(),
    now: s(Date.now()),
    status: health.status,
    reasons: health.reasons,
    event_loop: {
      lag_p99_ms: Math.round(health.eventLoop.lagP99Ms * 10) / 10,
      lag_max_ms: Math.round(health.eventLoop.lagMaxMs * 10) / 10,
    },
    ...(config.provisioning ? { provisioning: provisioningView(config.state_dir) } : {}),
    uplink: {
      connected: up.connected,
      broker: stripCredentials(up.url),
      ...(up.last_publish_ts ? { last_publish_ts: s(up.last_publish_ts) } : {}),
      ...(up.last_error ? { last_error: up.last_error } : {}),
      backlog,
      ...(st.oldest_pending_ts !== undefined ? { backlog_oldest_ts: s(st.oldest_pending_ts) } : {}),
    },
    store: {
      writable: health.store.writable,
      path: st.path,
      bytes: st.bytes,
      max_bytes: st.max_bytes,
      unsent: backlog,
      ...(st.oldest_pending_ts !== undefined ? { oldest_unsent_ts: s(st.oldest_pending_ts) } : {}),
      gaps: agent.health.gapEvents,
      dropped_readings: st.dropped_total,
      ...(health.store.error ? { error: health.store.error } : {}),
    },
    drivers,
  };
}
