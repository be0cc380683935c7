/**
 * Rate-limited, aggregated events for causes an attacker (or a broken device) can repeat at will:
 * wrong MICs, replays, refused concentrators. The first occurrence of a cause is raised at once;
 * the next ones within `intervalMs` are only counted, and one summary event with their count
 * follows at the end of the interval (then at most one per interval while they go on). Nothing is
 * lost: the counts add up to the occurrences, and `flush()` (driver stop) raises what is pending.
 * Keys are bounded by the caller (a configured device, a fixed cause), so this map is too.
 */
import type { EventSeverity } from "../driver.js";
import type { RaiseEvent } from "./network-context.js";

interface Pending {
  type: string;
  severity: EventSeverity;
  message: string;
  device: string | undefined;
  data: Record<string, unknown>;
  suppressed: number;
  since: number;
  timer: NodeJS.Timeout;
}

export class EventThrottle {
  private readonly open = new Map<string, Pending>();

  constructor(
    private readonly intervalMs: number,
    private readonly raise: RaiseEvent,
  ) {}

  /** Raise `type` for `key` (e.g. "mic:<device>") now, or count it into the next summary. */
  event(
    key: string,
    type: string,
    severity: EventSeverity,
    message: string,
    device?: string,
    data: Record<string, unknown> = {},
  ): void {
    const p = this.open.get(key);
    if (p) {
      p.suppressed++;
      p.message = message;
      p.data = data;
      return;
    }
    this.raise(type, severity, message, device, { ...data, count: 1 });
    this.arm(key, { type, severity, message, device, data, suppressed: 0 });
  }

  private arm(key: string, p: Omit<Pending, "timer" | "since">): void {
    const since = Date.now();
    const timer = setTimeout(() => this.close(key), this.intervalMs);
    timer.unref();
    this.open.set(key, { ...p, since, timer });
  }

  /** End of an interval: summarise what was counted, and keep counting if there was any. */
  private close(key: string): void {
    const p = this.open.get(key);
    if (!p) return;
    this.open.delete(key);
    if (p.suppressed === 0) return;
    this.summary(p);
    this.arm(key, { ...p, suppressed: 0 });
  }

  private summary(p: Pending): void {
    const s = Math.max(1, Math.round((Date.now() - p.since) / 1000));
    this.raise(
      p.type,
      p.severity,
      `${p.suppressed} more in the last ${s} s (summed up; last: ${p.message})`,
      p.device,
      { ...p.data, count: p.suppressed, aggregated: true, period_s: s },
    );
  }

  /** Raise every pending summary now (the driver stops) and forget the open intervals. */
  flush(): void {
    for (const p of this.open.values()) {
      clearTimeout(p.timer);
      if (p.suppressed > 0) this.summary(p);
    }
    this.open.clear();
  }
}
