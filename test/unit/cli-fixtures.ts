/**
 * A small in-memory ControlBackend for the control-protocol and CLI unit tests: two devices, a
 * log ring, a subscription hub. Writes check min/max the way the router would only so the CLI's
 * error path can be exercised here; the real router is tested in the integration tests.
 */
import { EventEmitter } from "node:events";
import type { DeviceInfo, Reading } from "../../drivers/driver.js";
import type {
  BufferStats,
  ControlBackend,
  ExportQuery,
  PurgeQuery,
  StatusView,
  StoredReading,
  TailItem,
  WriteOutcome,
} from "../../agent/control/backend.js";
import { LogRing } from "../../agent/control/logring.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";

export const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

export class FakeBackend implements ControlBackend {
  readonly hub = new EventEmitter();
  readonly logs = new LogRing(50);
  writes: { device: string; point: string; value: unknown; commandId: string }[] = [];
  stored: StoredReading[] = [];
  /** What `status` reports as the health (tests set a degraded one). */
  health: Pick<StatusView, "status" | "reasons"> = { status: "ok", reasons: [] };
  readonly inv: DeviceInfo[] = [
    {
      id: "lamp-1",
      driver: "bus1",
      kind: "modbus",
      name: "Lampadaire place de la Mairie",
      points: [
        { id: "power", unit: "W", type: "number", writable: false },
        { id: "dim", unit: "%", type: "number", writable: true, min: 0, max: 100 },
        { id: "on", type: "boolean", writable: true },
      ],
    },
    {
      id: "meter-2",
      driver: "bus1",
      kind: "modbus",
      points: [{ id: "energy", unit: "kWh", type: "number", writable: false }],
    },
  ];

  constructor() {
    for (let i = 0; i < 1200; i++) {
      this.stored.push({
        seq: i + 1,
        device: "meter-2",
        point: "energy",
        ts: NOW - (1200 - i) * 1000,
        value: 1000 + i / 10,
        unit: "kWh",
        quality: "good",
      });
    }
    this.stored.push({
      seq: 1201,
      device: "lamp-1",
      point: "power",
      ts: NOW - 500,
      value: 'odd "text", here',
      quality: "good",
    });
  }

  status(): StatusView {
    const sec = (ms: number) => ms / 1000;
    return {
      gateway: { id: "gw-test", name: "Test" },
      version: "0.1.0",
      config_version: "3f9a61c0d2b4",
      pid: 4242,
      started_at: new Date(NOW - 3_600_000).toISOString(),
      now: sec(NOW),
      status: this.health.status,
      reasons: this.health.reasons,
      event_loop: { lag_p99_ms: 10.5, lag_max_ms: 12 },
      uplink: {
        connected: false,
        broker: "mqtt://127.0.0.1:1",
        last_publish_ts: sec(NOW - 120_000),
        last_error: "connection refused",
        backlog: 17,
        backlog_oldest_ts: sec(NOW - 90_000),
      },
      store: {
        writable: true,
        path: "/tmp/store.db",
        bytes: 5 * 1024 * 1024,
        max_bytes: 512 * 1024 * 1024,
        unsent: 17,
        oldest_unsent_ts: sec(NOW - 90_000),
        gaps: 0,
        dropped_readings: 0,
      },
      drivers: [
        {
          id: "bus1",
          kind: "modbus",
          state: "started",
          detail: "connected to 127.0.0.1:5020",
          devices: [
            { id: "lamp-1", online: true, last_good_ts: sec(NOW - 2000), error_count: 0 },
            {
              id: "meter-2",
              online: false,
              last_good_ts: sec(NOW - 600_000),
              error_count: 12,
              last_error: "timeout: no answer from unit 2",
              last_error_ts: sec(NOW - 5000),
            },
          ],
        },
      ],
    };
  }

  inventory(): DeviceInfo[] {
    return this.inv;
  }

  latest(device?: string): StoredReading[] {
    const last = new Map<string, StoredReading>();
    for (const r of this.stored)
      if (!device || r.device === device) last.set(`${r.device}/${r.point}`, r);
    return [...last.values()];
  }

  async read(device: string, points?: string[]): Promise<Reading[]> {
    const dev = this.inv.find((d) => d.id === device)!;
    return dev.points
      .filter((p) => !points || points.includes(p.id))
      .map((p) =>
        device === "meter-2"
          ? {
              device,
              point: p.id,
              ts: NOW,
              value: null,
              quality: "timeout" as const,
              detail: "no answer from unit 2 after 1000 ms",
            }
          : {
              device,
              point: p.id,
              ts: NOW,
              value: p.type === "boolean" ? true : 42.5,
              ...(p.unit ? { unit: p.unit } : {}),
              quality: "good" as const,
            },
      );
  }

  async write(req: {
    device: string;
    point: string;
    value: string | number | boolean;
    commandId: string;
  }): Promise<WriteOutcome> {
    const p = this.inv.find((d) => d.id === req.device)!.points.find((x) => x.id === req.point)!;
    if (!p.writable)
      throw new EdgeError(ErrorCode.CommandRefused, `${req.device}/${req.point} is not writable`);
    if (
      typeof req.value === "number" &&
      ((p.min !== undefined && req.value < p.min) || (p.max !== undefined && req.value > p.max))
    ) {
      throw new EdgeError(
        ErrorCode.CommandInvalid,
        `${req.device}/${req.point}: value ${req.value} out of range ${p.min}..${p.max}`,
      );
    }
    this.writes.push(req);
    return { ok: true, readBack: req.value, commandId: req.commandId };
  }

  subscribe(fn: (item: TailItem) => void): () => void {
    this.hub.on("item", fn);
    return () => this.hub.off("item", fn);
  }

  publish(item: TailItem): void {
    this.hub.emit("item", item);
  }

  bufferStats(): BufferStats {
    return {
      path: "/tmp/store.db",
      bytes: 5 * 1024 * 1024,
      maxBytes: 512 * 1024 * 1024,
      unsent: 17,
      oldestUnsentTs: NOW - 90_000,
      history: this.stored.length,
      oldestHistoryTs: this.stored[0]?.ts,
      gaps: 0,
      droppedReadings: 0,
      lastSeq: 1201,
    };
  }

  *bufferExport(q: ExportQuery): Iterable<StoredReading> {
    for (const r of this.stored) {
      if (q.from !== undefined && r.ts < q.from) continue;
      if (q.to !== undefined && r.ts > q.to) continue;
      if (q.device && r.device !== q.device) continue;
      if (q.point && r.point !== q.point) continue;
      yield r;
    }
  }

  bufferPurge(q: PurgeQuery) {
    const keep = this.stored.filter((r) => q.before !== undefined && r.ts >= q.before);
    const deleted = this.stored.length - keep.length;
    this.stored = keep;
    return { deleted };
  }

  buses() {
    return [{ driver: "bus1", kind: "modbus", host: "127.0.0.1", port: 5020 }];
  }
}
