/**
 * Maintenance windows: when the classroom part of a rollout may run.
 *
 * A spec is one or more windows separated by ";", each "<days> <HH:MM>-<HH:MM> [<offset>]":
 *   daily 02:00-04:00
 *   Mon-Fri 23:30-01:00 +01:00      (runs past midnight: Friday's ends Saturday 01:00)
 *   Sat,Sun 03:00-07:00 -0700; Wed 12:00-13:00 Z
 * Days: "daily", a day, a range (may wrap: Fri-Mon) or a comma list of both. An end at or
 * before the start runs into the next day; "24:00" is allowed as an end.
 *
 * Workflow code imports this module, so it is pure: no Node modules, no clock (callers
 * pass `now`), and fixed UTC offsets only, because a time zone database inside workflow
 * code would make a run's decisions depend on the worker's copy of it.
 */

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const WEEK = 7 * DAY;

/** One window: on each of `days` (0 = Sunday, in the window's own offset), from start for a length. */
export interface MaintenanceWindow {
  days: number[];
  /** Minutes after local midnight. */
  startMinute: number;
  /** 1 .. 1440 minutes. */
  lengthMinutes: number;
  /** Minutes east of UTC. */
  offsetMinutes: number;
}

/** Plain JSON: it may travel in workflow inputs. */
export interface MaintenanceWindows {
  windows: MaintenanceWindow[];
}

export class WindowSpecError extends Error {
  override readonly name = 'WindowSpecError';
}

function dayIndex(name: string, part: string): number {
  const i = DAY_NAMES.findIndex((d) => d.toLowerCase() === name.toLowerCase());
  if (i < 0) throw new WindowSpecError(`"${part}": "${name}" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun or daily)`);
  return i;
}

function parseDays(text: string, part: string): number[] {
  if (text.toLowerCase() === 'daily') return [0, 1, 2, 3, 4, 5, 6];
  const days = new Set<number>();
  for (const item of text.split(',')) {
    const [from, to, extra] = item.split('-');
    if (extra !== undefined || !from) throw new WindowSpecError(`"${part}": "${item}" is not a day or a range of days such as Mon-Fri`);
    const a = dayIndex(from, part);
    if (to === undefined) {
      days.add(a);
      continue;
    }
    const b = dayIndex(to, part);
    for (let d = a; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === b) break;
    }
  }
  return [...days].sort((x, y) => x - y);
}

function parseTime(text: string, part: string, isEnd: boolean): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (!m) throw new WindowSpecError(`"${part}": "${text}" is not a time of day such as 02:30`);
  const hours = Number(m[1]);
  const minutes = Number(m[2]);
  if (hours === 24 && minutes === 0 && isEnd) return 24 * 60;
  if (hours > 23) throw new WindowSpecError(`"${part}": hour ${hours} is not a time of day`);
  if (minutes > 59) throw new WindowSpecError(`"${part}": minute ${minutes} is not a time of day`);
  return hours * 60 + minutes;
}

function parseOffset(text: string | undefined, part: string): number {
  if (text === undefined || /^(z|utc)$/i.test(text)) return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(text);
  if (!m || Number(m[2]) > 14 || Number(m[3]) > 59) throw new WindowSpecError(`"${part}": "${text}" is not a UTC offset such as +01:00, -0700 or Z`);
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

/** Reads a spec; a bad part throws WindowSpecError naming it and what is wrong. */
export function parseWindows(spec: string): MaintenanceWindows {
  const parts = spec
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (parts.length === 0) throw new WindowSpecError('an empty maintenance window; expected e.g. "Mon-Fri 02:00-04:00 +01:00"');
  return {
    windows: parts.map((part) => {
      const fields = part.split(/\s+/);
      if (fields.length < 2 || fields.length > 3)
        throw new WindowSpecError(`"${part}": expected "<days> <HH:MM>-<HH:MM> [<offset>]", e.g. "Mon-Fri 02:00-04:00 +01:00"`);
      const [daysText, timesText, offsetText] = fields as [string, string, string | undefined];
      const times = timesText.split('-');
      if (times.length !== 2) throw new WindowSpecError(`"${part}": "${timesText}" is not a time range such as 02:00-04:00`);
      const start = parseTime(times[0]!, part, false);
      const end = parseTime(times[1]!, part, true);
      return {
        days: parseDays(daysText, part),
        startMinute: start,
        lengthMinutes: end > start ? end - start : end + 24 * 60 - start,
        offsetMinutes: parseOffset(offsetText, part),
      };
    }),
  };
}

const pad = (n: number) => String(n).padStart(2, '0');
const clock = (minutes: number) => `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;

function formatDays(days: number[]): string {
  if (days.length === 7) return 'daily';
  // Runs of consecutive days (Monday first, as people write them) become ranges.
  const order = [1, 2, 3, 4, 5, 6, 0].filter((d) => days.includes(d));
  const runs: number[][] = [];
  for (const d of order) {
    const run = runs.at(-1);
    if (run && (run.at(-1)! + 1) % 7 === d) run.push(d);
    else runs.push([d]);
  }
  return runs.map((r) => (r.length >= 3 ? `${DAY_NAMES[r[0]!]}-${DAY_NAMES[r.at(-1)!]}` : r.map((d) => DAY_NAMES[d]).join(','))).join(',');
}

function formatOffset(offset: number): string {
  if (offset === 0) return '';
  const abs = Math.abs(offset);
  return ` ${offset < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** The canonical spec: parseWindows(formatWindows(w)) equals w. */
export function formatWindows(w: MaintenanceWindows): string {
  return w.windows
    .map((x) => {
      const end = (x.startMinute + x.lengthMinutes) % (24 * 60);
      const endText = end === 0 ? '24:00' : clock(end);
      return `${formatDays(x.days)} ${clock(x.startMinute)}-${endText}${formatOffset(x.offsetMinutes)}`;
    })
    .join('; ');
}

/** Every opening of the windows as [start, end) in epoch ms, for the week around `now` and the next. */
function intervalsAround(w: MaintenanceWindows, now: number): [number, number][] {
  const out: [number, number][] = [];
  for (const x of w.windows) {
    const offset = x.offsetMinutes * MINUTE;
    // Local midnight of the window's own day `now` falls on, then back to that week's Sunday.
    const localNow = now + offset;
    const localMidnight = Math.floor(localNow / DAY) * DAY;
    const weekday = new Date(localMidnight).getUTCDay();
    const sunday = localMidnight - weekday * DAY;
    for (let week = -1; week <= 1; week++) {
      for (const d of x.days) {
        const start = sunday + week * WEEK + d * DAY + x.startMinute * MINUTE - offset;
        out.push([start, start + x.lengthMinutes * MINUTE]);
      }
    }
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Overlapping or touching openings merged into one. */
function merged(w: MaintenanceWindows, now: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of intervalsAround(w, now)) {
    const last = out.at(-1);
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

const toMs = (now: Date | number) => (typeof now === 'number' ? now : now.getTime());

export function isOpen(w: MaintenanceWindows, now: Date | number): boolean {
  const t = toMs(now);
  return merged(w, t).some(([s, e]) => s <= t && t < e);
}

/** When the windows open next (epoch ms); `now` itself when open now. */
export function nextOpening(w: MaintenanceWindows, now: Date | number): number {
  const t = toMs(now);
  for (const [s, e] of merged(w, t)) {
    if (s <= t && t < e) return t;
    if (s > t) return s;
  }
  // Every window has at least one day, so a week ahead always holds an opening.
  throw new WindowSpecError('a maintenance window without any opening');
}

/** When the open window around `now` closes (epoch ms), or undefined when closed now. */
export function nextClosing(w: MaintenanceWindows, now: Date | number): number | undefined {
  const t = toMs(now);
  return merged(w, t).find(([s, e]) => s <= t && t < e)?.[1];
}
