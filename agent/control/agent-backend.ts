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
import { buildStatusView } from "../health/view.js";
import type {
  BufferStats,
  BusInfo,
  ControlBackend,
  ExportQuery,
  PurgeQuery,
  PurgeResult,
  StatusView,
  StoredReading,
  TailItem,
  WriteOutcome,
} from "./backend.js";
import type { LogRing } from "./logring.js";

/** The control plane's local write (agent/commands/control-plane.ts `localWrite`). */
export interface LocalWriter {
  localWrite(req: {
    device: string;
    point: string;
    value: Value;
    commandId: string;
    who?: `local:${string}`;
    confirmed?: boolean;
  }): Promise<WriteOutcome>;
  /** The command service as the local technician (control-plane.ts `execute`). */
  execute(name: string, body: Record<string, unknown>): Promise<unknown>;
  auditRefusal(method: string, who: `local:${string}`, e: EdgeError): void;
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

  command(name: string, body: Record<string, unknown>): Promise<unknown> {
    if (!this.writer)
      throw new EdgeError(
        ErrorCode.CommandRefused,
        "the command router is not ready (its journal needs the store) — see `eclor-edge status`",
      );
    return this.writer.execute(name, body);
  }

  status(): StatusView {
    return buildStatusView(this.agent);
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
    const rows = this.agent.store.latestReadingRows(LATEST_SCAN_ROWS);
    for (const row of rows) {
      if (row.name === null || this.latestSeen.has(row.name)) continue;
      const r = readingOfRow(row);
      if (r) this.latestSeen.set(row.name, r);
    }
  }

  read(device: string, points?: string[]): Promise<Reading[]> {
    return this.agent.read(device, points);
  }

  auditRefusal(method: string, who: `local:${string}`, e: EdgeError): void {
    this.writer?.auditRefusal(method, who, e);
  }

  async write(req: {
    device: string;
    point: string;
    value: Value;
    commandId: string;
    who?: `local:${string}`;
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
    const store = this.agent.store;
    const st = store.stats();
    const unsent = st.backlog;
    let total = 0;
    let oldestTs: number | undefined;
    if (st.available) {
      const c = store.contents();
      total = c.rows;
      oldestTs = c.oldestHistoryTs;
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
    const store = this.agent.store;
    store.flush();
    const filter = {
      ...(q.from !== undefined ? { fromTs: q.from } : {}),
      // `to` is inclusive for the export (ts ≤ to).
      ...(q.to !== undefined ? { toTs: q.to + 1 } : {}),
      ...(q.device && q.point
        ? { name: `${q.device}/${q.point}` }
        : { ...(q.device ? { device: q.device } : {}), ...(q.point ? { point: q.point } : {}) }),
    };
    let after = 0;
    for (;;) {
      // One page per query: the consumer awaits between pages, and the store must be free to
      // commit meanwhile (better-sqlite3 forbids other statements while an iterator is open).
      const page = store.readingsPage(filter, after, PAGE);
      for (const row of page.rows) {
        const r = readingOfRow(row);
        if (r) yield r;
      }
      if (page.next === null) return;
      after = page.next;
    }
  }

  /**
   * Delete history (readings already acknowledged by the broker) acquired before `before`.
   * Unsent readings are never deleted by hand: they leave the box, or the store drops the oldest
   * when it is full and tells the hypervisor with a gap event (nothing is lost silently).
   */
  bufferPurge(q: PurgeQuery): PurgeResult {
    const store = this.agent.store;
    const deleted = store.deleteHistoryBefore(q.before ?? Number.MAX_SAFE_INTEGER);
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
