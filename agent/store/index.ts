/**
 * agent/store: the only durable state of the agent. See db.ts (durability decision and how other
 * components add their own tables with `migrate`), store.ts (group commit, size bound, gap events,
 * cleanup), outbox.ts (SQL), records.ts (payload rendering), kv.ts (DriverState).
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
export { Store, type StoreOptions, type StoreStats, type StoredListener } from "./store.js";
