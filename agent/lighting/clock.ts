/**
 * Can the wall clock be trusted? A schedule on a wrong clock switches lamps at noon: the module
 * falls to the safe state instead (ARCHITECTURE.md invariant 9). Distrusted while
 *   - the clock was never synchronised since boot (systemd-timesyncd creates
 *     /run/systemd/timesync/synchronized at its first sync, see systemd-timesyncd.service(8);
 *     without the file, `timedatectl show -p NTPSynchronized --value` is asked), or
 *   - the wall clock jumped by more than `max_jump` against the monotonic clock, until the
 *     next synchronisation after the jump (a new sync value: wall times on both sides of a
 *     jump cannot be compared).
 * The source is injectable (`ClockSource`): tests drive wall time, monotonic time and sync.
 */
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import type { ClockView } from "./arbiter.js";

export interface ClockSource {
  /** Wall clock, ms since the epoch. */
  now(): number;
  /** Monotonic clock, ms. */
  mono(): number;
  /** Wall time of the last synchronisation since boot, `null` when never, `undefined` unknown. */
  lastSync(): number | null | undefined;
}

/** The system's clocks and systemd's view of synchronisation. */
export function systemClock(syncFile: string): ClockSource {
  let asked = { at: -Infinity, value: undefined as number | null | undefined };
  return {
    now: () => Date.now(),
    mono: () => performance.now(),
    lastSync: () => {
      try {
        return statSync(syncFile).mtimeMs;
      } catch {
        // No file: ask timedatectl, at most once a minute (it is a process spawn).
      }
      const mono = performance.now();
      if (mono - asked.at < 60_000) return asked.value;
      let value: number | null | undefined;
      try {
        const out = execFileSync("timedatectl", ["show", "-p", "NTPSynchronized", "--value"], {
          timeout: 2000,
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"],
        }).trim();
        // Stable while synchronised: a new value only when it becomes synchronised again.
        value = out === "yes" ? (typeof asked.value === "number" ? asked.value : Date.now()) : null;
      } catch {
        value = undefined;
      }
      asked = { at: mono, value };
      return value;
    },
  };
}

export class ClockGuard {
  private last?: { wall: number; mono: number; sync: number | null | undefined };
  /** After a jump: the last sync then, `null` when none — trusted again once it changes. */
  private syncAtJump: number | null | undefined = undefined;
  private jumped = false;
  private jumpText = "";

  constructor(
    private readonly source: ClockSource,
    private readonly opts: { requireSync: boolean; maxJumpMs: number },
  ) {}

  check(): ClockView {
    const wall = this.source.now();
    const mono = this.source.mono();
    const sync = this.source.lastSync();
    if (this.last) {
      const drift = wall - this.last.wall - (mono - this.last.mono);
      // A jump that comes with a new synchronisation is the synchronisation correcting the
      // clock (timesyncd touches its file at every sync): trusted.
      const synced = typeof sync === "number" && sync !== this.last.sync;
      if (Math.abs(drift) > this.opts.maxJumpMs && !synced) {
        // Wall times on both sides of a jump cannot be compared: remember the sync value seen
        // at the jump, and wait for a newer one.
        this.jumped = true;
        this.syncAtJump = sync;
        this.jumpText = `the wall clock jumped ${drift > 0 ? "forward" : "back"} by ${Math.round(Math.abs(drift) / 1000)} s`;
      }
    }
    this.last = { wall, mono, sync };
    if (this.opts.requireSync && (sync === null || sync === undefined))
      return {
        trusted: false,
        reason:
          sync === null
            ? "no time synchronisation since boot"
            : "the time synchronisation cannot be checked (no timesyncd file, no timedatectl)",
      };
    if (this.jumped) {
      if (typeof sync === "number" && sync !== this.syncAtJump) this.jumped = false;
      else return { trusted: false, reason: `${this.jumpText}, not synchronised since` };
    }
    return { trusted: true, reason: "synchronised" };
  }
}
