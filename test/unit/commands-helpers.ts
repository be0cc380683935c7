/** Shared fixtures of the commands unit tests: a real SQLite file and a scripted write target. */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { DeviceInfo, DriverEvent, WriteRequest, WriteResult } from "../../drivers/driver.js";
import { AuditLog } from "../../agent/commands/audit.js";
import { Journal } from "../../agent/commands/journal.js";
import { RateLimiter } from "../../agent/commands/rate-limit.js";
import { CommandRouter, type WriteTarget } from "../../agent/commands/router.js";

export const silent = pino({ level: "silent" });

export class TempDb {
  readonly dir = mkdtempSync(join(tmpdir(), "eclor-cmd-"));
  readonly path = join(this.dir, "store.db");
  db = new Database(this.path);
  /** Close and reopen the file, as after an agent restart. */
  reopen(): Database.Database {
    this.db.close();
    this.db = new Database(this.path);
    return this.db;
  }
  dispose(): void {
    if (this.db.open) this.db.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const lampInventory: DeviceInfo[] = [
  {
    id: "lamp-1",
    driver: "bus",
    kind: "modbus",
    points: [
      { id: "dim", type: "number", writable: true, min: 0, max: 100, unit: "%" },
      { id: "on", type: "boolean", writable: true },
      { id: "power", type: "number", writable: false, unit: "W" },
      { id: "label", type: "string", writable: true },
    ],
  },
];

/** A device whose registers are a Map; records every write it is handed. */
export class FakeTarget implements WriteTarget {
  readonly values = new Map<string, unknown>();
  readonly writes: WriteRequest[] = [];
  behaviour: "ok" | "hang" | "reject" | "nack" = "ok";
  inventory(): DeviceInfo[] {
    return lampInventory;
  }
  write(r: WriteRequest): Promise<WriteResult> {
    this.writes.push(r);
    if (this.behaviour === "hang") return new Promise(() => {});
    if (this.behaviour === "reject")
      return Promise.reject(new Error("Modbus exception 4 (slave device failure)"));
    if (this.behaviour === "nack")
      return Promise.resolve({ ok: false, detail: "read-back differs" });
    this.values.set(`${r.device}/${r.point}`, r.value);
    return Promise.resolve({ ok: true, readBack: r.value });
  }
}

export function makeRouter(
  db: Database.Database,
  target: WriteTarget,
  opts: { burst?: number; perMinute?: number; timeoutMs?: number; now?: () => number } = {},
) {
  const events: DriverEvent[] = [];
  const journal = new Journal(db);
  const audit = new AuditLog(db, (e) => events.push(e));
  const router = new CommandRouter({
    target,
    journal,
    audit,
    limiter: new RateLimiter(opts.burst ?? 100, opts.perMinute ?? 6000, opts.now),
    timeoutMs: opts.timeoutMs ?? 2000,
    ...(opts.now ? { now: opts.now } : {}),
  });
  return { router, journal, audit, events };
}
