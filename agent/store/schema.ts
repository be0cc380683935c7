/**
 * Core store schema, versioned with PRAGMA user_version (append steps, never edit released ones).
 *
 * outbox: one row per reading or event, `seq` = the gateway's sequence number (INTEGER PRIMARY
 *   KEY, assigned by the store from meta.next_seq so it is never reused, even after every row
 *   was deleted). A row is *pending* while seq > meta.sent_<prio> (the uplink's acknowledged
 *   watermark of its priority) and *history* after; history is deleted by age or when the store
 *   is full. `body` is the rendered JSON record without `seq` (see records.ts).
 * meta:   small integer counters (next_seq, sent_0, sent_1, sent_2, bytes).
 * kv:     drivers' durable state (DriverState), namespaced per driver instance.
 * info:   text facts of the store: `epoch` (random UUID created with the database: the
 *   hypervisor's dedupe key is (gateway, epoch, seq), docs/mqtt-api.md §7), `epoch_first_seq`,
 *   and `announce` while the new epoch's `store_epoch` event is not yet queued.
 */
import { randomUUID } from "node:crypto";
import type { Db, Migration } from "./db.js";

export const coreMigrations: readonly Migration[] = [
  `CREATE TABLE outbox (
     seq    INTEGER PRIMARY KEY,
     prio   INTEGER NOT NULL,
     stream TEXT    NOT NULL,
     ts     INTEGER NOT NULL,
     name   TEXT,
     body   TEXT    NOT NULL
   );
   CREATE INDEX outbox_prio ON outbox (prio); -- (prio, seq): seq is the rowid
   CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
   INSERT INTO meta (key, value) VALUES ('next_seq', 1), ('sent_0', 0), ('sent_1', 0), ('sent_2', 0);
   CREATE TABLE kv (
     ns    TEXT NOT NULL,
     key   TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (ns, key)
   ) WITHOUT ROWID;`,
  // 2: the logical size is kept in meta (updated in the same transactions as the rows), so
  // opening a store with a large backlog does not scan it.
  `INSERT INTO meta (key, value)
     SELECT 'bytes', coalesce(sum(length(body) + coalesce(length(name), 0)), 0) + count(*) * 40
     FROM outbox;`,
  // 3: the store epoch. A store that already assigned seqs (an upgrade) starts its epoch at its
  // next seq and announces it; a new file starts at 1 (announced if the box knew an older one,
  // see sidecar.ts).
  (db: Db) => {
    const next = db
      .prepare("SELECT value FROM meta WHERE key = 'next_seq'")
      .pluck()
      .get() as number;
    db.exec("CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
    const put = db.prepare("INSERT INTO info (key, value) VALUES (?, ?)");
    put.run("epoch", randomUUID());
    put.run("epoch_first_seq", String(next));
    if (next > 1) put.run("announce", "upgraded");
  },
];
