/**
 * Disk space set aside for a full disk (`<store>.reserve`). In WAL mode SQLite cannot even
 * delete rows on a full file system: the DELETE must be written to the WAL, and a checkpoint must
 * first copy the WAL's pages into the database file, which needs new blocks too (measured on a
 * tmpfs: checkpoint, DELETE and INSERT all fail with SQLITE_FULL). So the store keeps a small
 * file of zeroes and deletes it on SQLITE_FULL: that room lets it checkpoint, evict already-sent
 * history and go on writing into the freed pages (issue 15 item 2). The reserve is re-created
 * once the file system has room for it again (plus as much margin).
 */
import { closeSync, openSync, statfsSync, unlinkSync, writeSync, existsSync } from "node:fs";
import { dirname } from "node:path";

export class Reserve {
  constructor(
    readonly path: string,
    readonly bytes: number,
  ) {}

  get present(): boolean {
    return existsSync(this.path);
  }

  /** Create the reserve if it is missing and the disk has twice its size free. Best effort. */
  ensure(): boolean {
    if (this.bytes <= 0 || this.present) return this.present;
    try {
      const st = statfsSync(dirname(this.path));
      if (st.bavail * st.bsize < 2 * this.bytes) return false;
      const fd = openSync(this.path, "w");
      try {
        const block = Buffer.alloc(Math.min(this.bytes, 1 << 20));
        for (let done = 0; done < this.bytes; done += block.length)
          writeSync(fd, block, 0, Math.min(block.length, this.bytes - done));
      } finally {
        closeSync(fd);
      }
      return true;
    } catch {
      try {
        unlinkSync(this.path);
      } catch {
        // nothing was created
      }
      return false;
    }
  }

  /** Give the space back to the file system. Returns true if there was a reserve. */
  release(): boolean {
    try {
      unlinkSync(this.path);
      return true;
    } catch {
      return false;
    }
  }
}
