/**
 * A small note kept beside the database (`<store>.note`), for the two facts that must outlive
 * the database file or be written when it cannot be (issue 15 items 1 and 2):
 *
 * - the store epoch in force and the last seq known to be assigned in it, so that a replaced
 *   database (moved aside after corruption, restored from elsewhere) is announced with a
 *   `store_epoch` event naming the previous epoch;
 * - readings that could not be kept (memory buffer overflow or shutdown while the database was
 *   unwritable), counted here so the gap event reaches the hypervisor after a restart.
 *
 * The file is preallocated to a fixed size and always rewritten in place (no truncation, no
 * rename), so writing it needs no new blocks: it still works on a full disk, which is exactly
 * when the loss counter is needed. It is fsynced after every write. Losing the note (new SD card)
 * loses only the courtesy announcement: the epoch itself is random and unique on its own.
 */
import { closeSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";

export const NOTE_SIZE = 4096;

export interface Loss {
  count: number;
  /** Acquisition times of the first and last lost reading, ms. */
  firstTs: number;
  lastTs: number;
}

export interface Note {
  epoch?: string;
  /** The next seq the store had reached when the note was last written. */
  nextSeq?: number;
  lost?: Loss;
}

export function mergeLoss(a: Loss | undefined, b: Loss | undefined): Loss | undefined {
  if (!a) return b;
  if (!b) return a;
  return {
    count: a.count + b.count,
    firstTs: Math.min(a.firstTs, b.firstTs),
    lastTs: Math.max(a.lastTs, b.lastTs),
  };
}

export class Sidecar {
  private fd?: number;
  constructor(readonly path: string) {}

  /** Open (creating and preallocating it if needed). Never throws: the note is best effort. */
  private handle(): number | undefined {
    if (this.fd !== undefined) return this.fd;
    try {
      const fd = openSync(this.path, "a+");
      closeSync(fd);
      this.fd = openSync(this.path, "r+");
      const probe = Buffer.alloc(NOTE_SIZE);
      const n = readSync(this.fd, probe, 0, NOTE_SIZE, 0);
      if (n < NOTE_SIZE) {
        // Preallocate: pad to the full size once, while there is space.
        writeSync(this.fd, Buffer.alloc(NOTE_SIZE - n, 0x20), 0, NOTE_SIZE - n, n);
        fsyncSync(this.fd);
      }
    } catch {
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
    }
    return this.fd;
  }

  read(): Note {
    const fd = this.handle();
    if (fd === undefined) return {};
    try {
      const buf = Buffer.alloc(NOTE_SIZE);
      const n = readSync(fd, buf, 0, NOTE_SIZE, 0);
      const text = buf.subarray(0, n).toString("utf8").trim();
      return text ? (JSON.parse(text) as Note) : {};
    } catch {
      return {};
    }
  }

  /** Replace the note in place. Returns false if it could not be written. */
  write(note: Note): boolean {
    const fd = this.handle();
    if (fd === undefined) return false;
    const body = Buffer.from(JSON.stringify(note));
    if (body.length > NOTE_SIZE) return false;
    const buf = Buffer.alloc(NOTE_SIZE, 0x20);
    body.copy(buf);
    try {
      writeSync(fd, buf, 0, NOTE_SIZE, 0);
      fsyncSync(fd);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
