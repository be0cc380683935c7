/**
 * agent/store: the only durable state of the agent. See db.ts (durability decision and how other
 * components add their own tables with `migrate`), store.ts (group commit, size bound, gap events,
 * cleanup, epoch), outbox.ts (outbox SQL), queries.ts (history/replay/export SQL, bounded pages),
 * records.ts (payload rendering), kv.ts (DriverState), sidecar.ts (the note beside the database:
 * epoch, losses), reserve.ts (disk space for a full disk), store-events.ts (gap, store_epoch).
 */
export {
  migrate,
  openDatabase,
  storeError,
  withNormalSync,
  type Db,
  type Migration,
} from "./db.js";
export { KvState } from "./kv.js";
export { Outbox, type DropRange, type HistoryRow, type OutboxRow } from "./outbox.js";
export * from "./records.js";
export { type Page, type RowFilter } from "./queries.js";
export { Store, type StoreOptions, type StoreStats, type StoredListener } from "./store.js";
