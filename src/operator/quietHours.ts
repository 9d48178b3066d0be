/**
 * The seed's author "checked [his] web logs to find a proper time window with low
 * database usage". Given request times, find for each weekday the window of a given
 * length with the fewest requests, in a fixed UTC offset (the logs' own, usually), as a
 * maintenance window spec ready for `schedule create --window`.
 */
import { formatWindows, type MaintenanceWindow } from '../shared/maintenanceWindow';
import type { LoggedRequest } from './accessLog';

const MINUTE = 60_000;
const DAY_MINUTES = 24 * 60;
export const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;

export interface QuietWindow {
  day: number;
  startMinute: number;
  lengthMinutes: number;
  /** Requests in the window, averaged over the dates of that weekday the logs cover. */
  requestsPerWeek: number;
  /** Its share of the requests of that day (from its start, 24 hours). */
  shareOfDay: number;
}

export interface QuietHours {
  offsetMinutes: number;
  /** The most dates of one weekday the logs cover. */
  weeks: number;
  windows: QuietWindow[];
  spec: string;
}

/** The offset most lines were written in. */
export function commonOffset(requests: LoggedRequest[]): number {
  const counts = new Map<number, number>();
  for (const r of requests) counts.set(r.offsetMinutes, (counts.get(r.offsetMinutes) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
}

export function findQuietHours(
  requests: LoggedRequest[],
  options: { lengthMinutes: number; stepMinutes: number; days?: number[]; offsetMinutes?: number },
): QuietHours {
  const { lengthMinutes, stepMinutes } = options;
  const offsetMinutes = options.offsetMinutes ?? commonOffset(requests);
  // Requests per minute of the week (local time), so a window past midnight or past
  // Saturday wraps around into the next day and week.
  const week = new Float64Array(7 * DAY_MINUTES);
  // Each weekday is averaged over the dates of it the logs cover.
  const datesSeen: Set<number>[] = Array.from({ length: 7 }, () => new Set<number>());
  for (const r of requests) {
    const local = r.at + offsetMinutes * MINUTE;
    const minuteOfEpoch = Math.floor(local / MINUTE);
    // 1970-01-01 was a Thursday (day 4).
    const minuteOfWeek = (((minuteOfEpoch + 4 * DAY_MINUTES) % (7 * DAY_MINUTES)) + 7 * DAY_MINUTES) % (7 * DAY_MINUTES);
    week[minuteOfWeek]! += 1;
    const date = Math.floor(minuteOfEpoch / DAY_MINUTES);
    datesSeen[Math.floor(minuteOfWeek / DAY_MINUTES)]!.add(date);
  }
  const weeks = Math.max(1, ...datesSeen.map((d) => d.size));
  const prefix = new Float64Array(week.length * 2 + 1);
  for (let i = 0; i < week.length * 2; i++) prefix[i + 1] = prefix[i]! + week[i % week.length]!;
  const sum = (from: number, length: number) => prefix[from + length]! - prefix[from]!;

  const windows: QuietWindow[] = [];
  for (const day of options.days ?? [1, 2, 3, 4, 5, 6, 0]) {
    let best: { start: number; count: number } | undefined;
    for (let start = 0; start < DAY_MINUTES; start += stepMinutes) {
      const count = sum(day * DAY_MINUTES + start, lengthMinutes);
      if (!best || count < best.count) best = { start, count };
    }
    const dayTotal = sum(day * DAY_MINUTES + best!.start, DAY_MINUTES);
    windows.push({
      day,
      startMinute: best!.start,
      lengthMinutes,
      requestsPerWeek: best!.count / Math.max(1, datesSeen[day]!.size),
      shareOfDay: dayTotal === 0 ? 0 : best!.count / dayTotal,
    });
  }
  const spec = formatWindows({
    windows: windows.map((w): MaintenanceWindow => ({ days: [w.day], startMinute: w.startMinute, lengthMinutes, offsetMinutes })),
  });
  return { offsetMinutes, weeks, windows, spec };
}
