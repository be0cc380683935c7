/**
 * The ControlBackend of the running agent: status from the uplink, store and drivers; reads
 * through the agent; writes through the control plane's command router (as the local
 * technician); `tail` from the store's commit listener; buffer export/purge on the store's
 * SQLite outbox. Read queries page by seq and never keep a statement open across an await (the
 * store writes on the same connection).
 */
import type { Config } from "../../config/schema.js";
import type { Reading, Value } from "../../drivers/driver.js";
import type { Agent } from "../agent.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import type { HistoryRow, SenmlRecord, StoredRecord } from "../store/index.js";
import { VERSION } from "../version.js";
import type {
  BufferStats,
  BusInfo,
  ControlBackend,
  ExportQuery,
  PurgeQuery,
  PurgeResult,
  StatusView,
  ProvisioningStatusView,
  StoredReading,
  TailItem,
  WriteOutcome,
} from "./backend.js";
import type { LogRing } from "./logring.js";
import { describeProvisionStatus, readProvisionStatus } from "../provision/state.js";

/** The control plane's local write (agent/commands/control-plane.ts `localWrite`). */
export interface LocalWriter {
  localWrite(req: {
    device: string;
    point: string;
    value: Value;
    commandId: string;
    confirmed?: boolean;
  }): Promise<WriteOutcome>;
}

/** How far back `devices` looks for latest values it has not seen committed since the start. */
const LATEST_SCAN_ROWS = 20_000;
const PAGE = 500;

/** A stored SenML telemetry body (records.ts) back to a Reading. */
export function readingOfRow(
  row: Pick<HistoryRow, "seq" | "ts" | "name" | "body">,
): StoredReading | undefined {
  if (row.name === null) return undefined;
  let rec: SenmlRecord;
  try {
    rec = JSON.parse(row.body) as SenmlRecord;
  } catch {
    return undefined;
  }
  const slash = row.name.indexOf("/");
  const value = rec.v ?? rec.vb ?? rec.vs ?? null;
  return {
    seq: row.seq,
    device: row.name.slice(0, slash),
    point: row.name.slice(slash + 1),
    ts: row.ts,
    value,
    ...(rec.u !== undefined ? { unit: rec.u } : {}),
    quality: rec.q ?? "good",
    ...(rec.qd !== undefined ? { detail: rec.qd } : {}),
  };
}

function stripCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//");
  }
}

export function busesOf(config: Config): BusInfo[] {
  const out: BusInfo[] = [];
  for (const d of config.drivers) {
    if (!d.enabled) continue;
    const any = d as unknown as {
      transport?: { type: string; path?: string; host?: string; port?: number };
      path?: string;
      devices: { id: string; unit_id?: number; address?: number; host?: string; port?: number }[];
    };
    const addr = (dev: (typeof any.devices)[number]) => dev.unit_id ?? dev.address;
    const devices = any.devices.map((dev) => ({
      id: dev.id,
      ...(addr(dev) !== undefined ? { address: addr(dev) } : {}),
    }));
    const t = any.transport;
    if (t?.type === "rtu" && t.path)
      out.push({ driver: d.id, kind: d.driver, path: t.path, devices });
    else if (t?.host !== undefined && t.port !== undefined) {
      // TCP devices may have their own host/port: each endpoint is a bus of its own.
      const eps = new Map<string, BusInfo>();
      for (const dev of any.devices) {
        const host = dev.host ?? t.host;
        const port = dev.port ?? t.port;
        const key = `${host}:${port}`;
        const b = eps.get(key) ?? { driver: d.id, kind: d.driver, host, port, devices: [] };
        b.devices!.push({ id: dev.id, ...(addr(dev) !== undefined ? { address: addr(dev) } : {}) });
        eps.set(key, b);
      }
      if (eps.size === 0)
        eps.set("", { driver: d.id, kind: d.driver, host: t.host, port: t.port, devices: [] });
      out.push(...eps.values());
    } else if (any.path) out.push({ driver: d.id, kind: d.driver, path: any.path, devices });
  }
  return out;
}

export class AgentBackend implements ControlBackend {
  private writer?: LocalWriter;
  private readonly latestSeen = new Map<string, StoredReading>();
  private seeded = false;
  private gaps = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly agent: Agent,
    private readonly config: Config,
    readonly logs?: LogRing,
  ) {
    this.unsubscribe = agent.onRecord((records) => {
      for (const r of records) {
        if (r.reading)
          this.latestSeen.set(`${r.reading.device}/${r.reading.point}`, {
            ...r.reading,
            seq: r.seq,
          });
        else if (r.event?.type === "gap") this.gaps++;
      }
    });
  }

  /** Called when the command router is ready (it needs the store's journal). */
  setWriter(w: LocalWriter): void {
    this.writer = w;
  }

  dispose(): void {
    this.unsubscribe();
  }

  status(): StatusView {
    const st = this.agent.store.stats();
    const up = this.agent.uplink.status();
    const backlog = st.pending.event + st.pending.live + st.pending.backfill + st.buffered;
    const started = Date.parse(this.agent.uplink.statePayload(true).started_at);
    return {
      gateway: {
        id: this.config.gateway.id,
        ...(this.config.gateway.name ? { name: this.config.gateway.name } : {}),
      },
      ...(this.config.provisioning
        ? { provisioning: provisioningView(this.config.state_dir) }
        : {}),
      version: VERSION,
      pid: process.pid,
      startedAt: started,
      now: Date.now(),
      uplink: {
        connected: up.connected,
        broker: stripCredentials(up.url),
        ...(up.last_publish_ts ? { lastPublishTs: up.last_publish_ts } : {}),
        ...(up.last_error ? { lastError: up.last_error } : {}),
        backlog,
        ...(st.oldest_pending_ts !== undefined ? { backlogOldestTs: st.oldest_pending_ts } : {}),
      },
      store: {
        path: st.path,
        bytes: st.bytes,
        maxBytes: st.max_bytes,
        unsent: backlog,
        ...(st.oldest_pending_ts !== undefined ? { oldestUnsentTs: st.oldest_pending_ts } : {}),
        gaps: this.gaps,
        droppedReadings: st.dropped_total,
        ...(st.error
          ? { error: st.error }
          : !st.available
            ? { error: "the store is not available" }
            : {}),
      },
      drivers: this.agent.driverStatus(),
    };
  }

  inventory() {
    return this.agent.inventory();
  }

  latest(device?: string): StoredReading[] {
    if (!this.seeded) this.seedLatest();
    const out: StoredReading[] = [];
    for (const r of this.latestSeen.values()) if (!device || r.device === device) out.push(r);
    return out;
  }

  /** Values committed before this agent started: the newest rows of the outbox, by seq. */
  private seedLatest(): void {
    if (!this.agent.store.available) return;
    this.seeded = true;
    const rows = this.agent.store.db
      .prepare(
        "SELECT seq, ts, name, body FROM outbox WHERE name IS NOT NULL ORDER BY seq DESC LIMIT ?",
      )
      .all(LATEST_SCAN_ROWS) as Pick<HistoryRow, "seq" | "ts" | "name" | "body">[];
    for (const row of rows) {
      if (row.name === null || this.latestSeen.has(row.name)) continue;
      const r = readingOfRow(row);
      if (r) this.latestSeen.set(row.name, r);
    }
  }

  read(device: string, points?: string[]): Promise<Reading[]> {
    return this.agent.read(device, points);
  }

  async write(req: {
    device: string;
    point: string;
    value: Value;
    commandId: string;
    confirmed?: boolean;
  }): Promise<WriteOutcome> {
    if (!this.writer) {
      throw new EdgeError(
        ErrorCode.StoreUnavailable,
        "the command router is not ready (its journal needs the store): writes are refused until it is — see `eclor-edge status`",
      );
    }
    return this.writer.localWrite(req);
  }

  subscribe(fn: (item: TailItem) => void): () => void {
    return this.agent.onRecord((records: readonly StoredRecord[]) => {
      for (const r of records) {
        if (r.reading) fn({ kind: "reading", reading: { ...r.reading, seq: r.seq } });
        else if (r.event) fn({ kind: "event", event: r.event, seq: r.seq });
      }
    });
  }

  bufferStats(): BufferStats {
    const st = this.agent.store.stats();
    const unsent = st.pending.event + st.pending.live + st.pending.backfill + st.buffered;
    let total = 0;
    let oldestTs: number | undefined;
    if (st.available) {
      const db = this.agent.store.db;
      total = db.prepare("SELECT count(*) FROM outbox").pluck().get() as number;
      // History = rows at or below their priority's acknowledged watermark (outbox.ts).
      const box = this.agent.store.outbox;
      oldestTs =
        (db
          .prepare(
            "SELECT ts FROM outbox WHERE (prio = 0 AND seq <= ?) OR (prio = 1 AND seq <= ?) OR (prio = 2 AND seq <= ?) ORDER BY seq LIMIT 1",
          )
          .pluck()
          .get(box.sentUpTo(0), box.sentUpTo(1), box.sentUpTo(2)) as number | undefined) ??
        undefined;
    }
    return {
      path: st.path,
      bytes: st.bytes,
      maxBytes: st.max_bytes,
      unsent,
      ...(st.oldest_pending_ts !== undefined ? { oldestUnsentTs: st.oldest_pending_ts } : {}),
      history: Math.max(0, total - (unsent - st.buffered)),
      ...(oldestTs !== undefined ? { oldestHistoryTs: oldestTs } : {}),
      gaps: this.gaps,
      droppedReadings: st.dropped_total,
      ...(st.next_seq > 1 ? { lastSeq: st.next_seq - 1 } : {}),
    };
  }

  *bufferExport(q: ExportQuery): Iterable<StoredReading> {
    this.agent.store.flush();
    const db = this.agent.store.db;
    const where = ["seq > ?", "name IS NOT NULL"];
    const args: (string | number)[] = [];
    const cond = (sql: string, ...values: (string | number)[]) => {
      where.push(sql);
      args.push(...values);
    };
    if (q.from !== undefined) cond("ts >= ?", q.from);
    if (q.to !== undefined) cond("ts <= ?", q.to);
    if (q.device && q.point) cond("name = ?", `${q.device}/${q.point}`);
    else if (q.device) cond("substr(name, 1, ?) = ?", q.device.length + 1, `${q.device}/`);
    else if (q.point) cond("name LIKE ? ESCAPE '\\'", `%/${q.point.replace(/[\\%_]/g, "\\$&")}`);
    const stmt = db.prepare(
      `SELECT seq, ts, name, body FROM outbox WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ${PAGE}`,
    );
    let after = 0;
    for (;;) {
      // One page per query: the consumer awaits between pages, and the store must be free to
      // commit meanwhile (better-sqlite3 forbids other statements while an iterator is open).
      const rows = stmt.all(after, ...args) as Pick<HistoryRow, "seq" | "ts" | "name" | "body">[];
      for (const row of rows) {
        const r = readingOfRow(row);
        if (r) yield r;
      }
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  /**
   * Delete history (readings already acknowledged by the broker) acquired before `before`.
   * Unsent readings are never deleted by hand: they leave the box, or the store drops the oldest
   * when it is full and tells the hypervisor with a gap event (nothing is lost silently).
   */
  bufferPurge(q: PurgeQuery): PurgeResult {
    const store = this.agent.store;
    const box = store.outbox;
    const cutoff = q.before ?? Number.MAX_SAFE_INTEGER;
    let deleted = 0;
    for (;;) {
      const n = store.db.transaction(() => box.deleteExpired(cutoff, 5000))();
      deleted += n;
      if (n < 5000) break;
    }
    const message = `a local technician purged ${deleted} sent records from the store${q.before !== undefined ? ` (acquired before ${new Date(q.before).toISOString()})` : ""}`;
    this.agent.logger.warn({ component: "control", deleted, before: q.before }, message);
    store.appendEvent({
      ts: Date.now(),
      type: "history_purged",
      severity: "info",
      message,
      data: { deleted, ...(q.before !== undefined ? { before: q.before } : {}) },
    });
    return { deleted };
  }

  buses(): BusInfo[] {
    return busesOf(this.config);
  }
}

function provisioningView(stateDir: string): ProvisioningStatusView {
  const p = readProvisionStatus(stateDir);
  return {
    status: p.status,
    summary: describeProvisionStatus(p),
    attention: p.status === "failed" || p.status === "expired" || p.renewal?.status === "failed",
  };
}
