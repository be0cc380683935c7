/**
 * The agent's recent log lines, kept in memory for `eclor-edge logs` (journald keeps the full
 * history; this is what a technician needs at the cabinet without `journalctl` rights). It is a
 * pino destination: add it to a `pino.multistream` next to stdout. Each line is pino's JSON.
 */
import { EventEmitter } from "node:events";

export interface LogEntry {
  /** Monotonic line number since the agent started, so a follower can resume without repeats. */
  n: number;
  line: string;
}

export class LogRing {
  private readonly lines: LogEntry[] = [];
  private next = 1;
  private partial = "";
  private readonly emitter = new EventEmitter();

  constructor(readonly capacity = 2000) {
    // One follower per `logs --follow` client; a handful at most.
    this.emitter.setMaxListeners(100);
  }

  /** pino destination interface: chunks are whole lines in practice, but do not rely on it. */
  write(chunk: string | Buffer): boolean {
    const text = this.partial + (typeof chunk === "string" ? chunk : chunk.toString("utf8"));
    const parts = text.split("\n");
    this.partial = parts.pop() ?? "";
    for (const line of parts) {
      if (line === "") continue;
      const entry = { n: this.next++, line };
      this.lines.push(entry);
      if (this.lines.length > this.capacity) this.lines.shift();
      this.emitter.emit("line", entry);
    }
    return true;
  }

  /** The last `count` lines (all kept lines when omitted). */
  recent(count?: number): LogEntry[] {
    if (count === undefined) return [...this.lines];
    return count <= 0 ? [] : this.lines.slice(-count);
  }

  subscribe(fn: (e: LogEntry) => void): () => void {
    this.emitter.on("line", fn);
    return () => this.emitter.off("line", fn);
  }
}
