/**
 * Local civil time in an IANA time zone with Intl only (no tz database of our own): the fixed
 * times of the programs ("00:30") are local, DST-aware. A local time that does not exist (the
 * spring-forward hour, 02:30 on the last Sunday of March in Europe/Paris) is taken as the same
 * wall-clock reading shifted by the gap (03:30); an ambiguous one (the autumn repeated hour) is
 * the first occurrence — the two cases RFC 5545 §3.3.5 (iCalendar DATE-TIME) settles the same way.
 */

export interface LocalParts {
  /** "YYYY-MM-DD" */
  date: string;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Monday … 6 = Sunday */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      weekday: "short",
    });
    formatters.set(tz, f);
  }
  return f;
}

const WD: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

export function localParts(ms: number, tz: string): LocalParts {
  const p: Record<string, string> = {};
  for (const x of formatter(tz).formatToParts(new Date(ms))) p[x.type] = x.value;
  return {
    date: `${p.year}-${p.month}-${p.day}`,
    hour: Number(p.hour),
    minute: Number(p.minute),
    second: Number(p.second),
    weekday: WD[p.weekday!] ?? 0,
  };
}

/** Offset of local time from UTC at instant `ms`, in ms (Europe/Paris: +1 h or +2 h). */
export function offsetAt(ms: number, tz: string): number {
  const l = localParts(ms, tz);
  const [y, m, d] = l.date.split("-").map(Number) as [number, number, number];
  const asUtc = Date.UTC(y, m - 1, d, l.hour, l.minute, l.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant of local wall-clock time `date` `hh:mm` in `tz` (see the header for DST gaps). */
export function zonedTime(date: string, hour: number, minute: number, tz: string): number {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const wall = Date.UTC(y, m - 1, d, hour, minute);
  // The offsets a few hours either side: the earlier one first gives the first occurrence of an
  // ambiguous time; in a gap neither matches and the earlier offset shifts forward by the gap.
  const before = offsetAt(wall - 12 * 3_600_000, tz);
  const after = offsetAt(wall + 12 * 3_600_000, tz);
  for (const off of before === after ? [before] : [before, after]) {
    const t = wall - off;
    if (offsetAt(t, tz) === off) return t;
  }
  return wall - before;
}

/** "YYYY-MM-DD" + n days. */
export function addDays(date: string, n: number): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** 0 = Monday … 6 = Sunday, of a calendar date. */
export function weekdayOf(date: string): number {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
}

/** The night `t` belongs to: the date of its evening (a night runs from noon to noon). */
export function nightOf(ms: number, tz: string): string {
  const l = localParts(ms, tz);
  return l.hour < 12 ? addDays(l.date, -1) : l.date;
}

export function isDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** "HH:MM" in `tz`. */
export function hhmm(ms: number, tz: string): string {
  const l = localParts(ms, tz);
  return `${String(l.hour).padStart(2, "0")}:${String(l.minute).padStart(2, "0")}`;
}
