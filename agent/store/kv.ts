/**
 * DriverState (drivers/driver.ts) backed by the `kv` table: JSON values, namespaced per driver
 * instance, each write its own transaction committed with synchronous=FULL — durable when the
 * call returns (LoRaWAN frame counters must never go backwards after a power cut).
 * When the database is unavailable every call throws EdgeError EE0201: a driver must not act on
 * state it cannot read or persist.
 */
import type { DriverState } from "../../drivers/driver.js";
import type { Db } from "./db.js";

export class KvState implements DriverState {
  constructor(
    private readonly db: () => Db,
    private readonly ns: string,
  ) {}

  get<T = unknown>(key: string): T | undefined {
    const v = this.db()
      .prepare("SELECT value FROM kv WHERE ns = ? AND key = ?")
      .pluck()
      .get(this.ns, key) as string | undefined;
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }

  set(key: string, value: unknown): void {
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError(`DriverState.set(${key}): value is not JSON`);
    this.db()
      .prepare(
        "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value",
      )
      .run(this.ns, key, json);
  }

  delete(key: string): void {
    this.db().prepare("DELETE FROM kv WHERE ns = ? AND key = ?").run(this.ns, key);
  }

  keys(prefix = ""): string[] {
    // Range scan instead of LIKE: keys may contain % and _.
    return this.db()
      .prepare("SELECT key FROM kv WHERE ns = ? AND key >= ? AND key < ? ORDER BY key")
      .pluck()
      .all(this.ns, prefix, `${prefix}\uffff`) as string[];
  }
}
