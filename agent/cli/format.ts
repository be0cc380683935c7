/**
 * Human output helpers for the technician commands: aligned tables, ages ("3 s ago"), sizes,
 * values with their units. Times print in the box's local time zone (TZ), to the second.
 */
import type { Reading } from "../../drivers/driver.js";
import { dim, green, red, yellow } from "./output.js";

// eslint-disable-next-line no-control-regex -- matching ANSI colour escapes is the point.
const ANSI = /\u001b\[[0-9;]*m/g;
const visible = (s: string) => s.replace(ANSI, "").length;

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(header: string[], rows: string[][], indent = ""): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => visible(r[i] ?? ""))));
  return all
    .map((r) =>
      (
        indent +
        r
          .map((c, i) => (i === r.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - visible(c))))
          .join("  ")
      ).trimEnd(),
    )
    .join("\n");
}

export function duration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ""}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ""}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ""}`;
}

export function ago(ts: number | undefined, now = Date.now()): string {
  if (ts === undefined) return "never";
  if (now - ts < 1000) return "just now";
  return `${duration(now - ts)} ago`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** `2026-11-25 18:10:06` in local time. */
export function timestamp(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** `18:10:06.123` in local time. */
export function clock(ts: number): string {
  const d = new Date(ts);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export function formatValue(r: Pick<Reading, "value" | "unit" | "quality" | "detail">): string {
  if (r.value === null || r.value === undefined) return dim("—");
  // Exactly as the driver gave it (String() is the shortest form that reads back the same):
  // rounding here showed -4822678189205111 as -4822678189210000 (issue 16 item 4).
  const v = String(r.value);
  return r.unit ? `${v} ${r.unit}` : v;
}

export function formatQuality(q: Reading["quality"], detail?: string): string {
  const text = detail && q !== "good" ? `${q}: ${detail}` : q;
  if (q === "good") return green(text);
  if (q === "uncertain") return yellow(text);
  return red(text);
}

export function isGood(q: Reading["quality"]): boolean {
  return q === "good" || q === "uncertain";
}

/**
 * A point in time from the command line: an ISO date/time (`2026-11-25`, `2026-11-25T08:00`,
 * with `Z` or an offset), epoch milliseconds, or an age like `30m`, `2h`, `7d` (that long ago).
 * Returns undefined for text that is none of these, so the caller can name the option.
 */
export function parseTime(text: string, now = Date.now()): number | undefined {
  const rel = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(text);
  if (rel) {
    const f = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as "s" | "m" | "h" | "d"];
    return Math.round(now - Number(rel[1]) * f);
  }
  if (/^\d{12,}$/.test(text)) return Number(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}
