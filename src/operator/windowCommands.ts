/**
 * `lessonplan window suggest --access-log <file>...`: the quietest window of a given
 * length per weekday, from Apache access logs, printed as a spec to paste into
 * `lessonplan schedule create --window`.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { msToNumber } from '@temporalio/common/lib/time';
import { UsageError, type CommandContext } from './commandContext';
import { readAccessLogs } from './accessLog';
import { DAY_NAMES, findQuietHours, type QuietHours } from './quietHours';

function minutesOption(option: string, value: string, max: number): number {
  let ms = Number.NaN;
  try {
    ms = msToNumber(value as never);
  } catch {
    // the line below says what was expected
  }
  const minutes = ms / 60_000;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > max) {
    throw new UsageError(`${option}: expected whole minutes between 1m and ${max / 60}h, e.g. "90m" or "2h", got "${value}"`);
  }
  return minutes;
}

function daysOption(value: string): number[] {
  const days = value.split(',').map((d) => {
    const i = DAY_NAMES.findIndex((n) => n.toLowerCase() === d.trim().toLowerCase());
    if (i < 0) throw new UsageError(`--days: "${d}" is not a day; expected e.g. "Mon,Tue,Sat"`);
    return i;
  });
  return [...new Set(days)];
}

function offsetOption(value: string): number {
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(value);
  if (!m) throw new UsageError(`--utc-offset: expected e.g. "+02:00" or "-0700", got "${value}"`);
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

const clock = (minutes: number) => `${String(Math.floor(minutes / 60) % 24).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

export function describeQuietHours(q: QuietHours, read: { lines: number; skipped: number; files: number }): string[] {
  const offset = `${q.offsetMinutes < 0 ? '-' : '+'}${clock(Math.abs(q.offsetMinutes))}`;
  const lines = [`quietest ${q.windows[0]?.lengthMinutes ?? 0} minutes per weekday (UTC${offset}), over ${q.weeks} week(s) of logs:`];
  for (const w of q.windows) {
    lines.push(
      `  ${DAY_NAMES[w.day]} ${clock(w.startMinute)}-${clock(w.startMinute + w.lengthMinutes)}  ${w.requestsPerWeek.toFixed(1).padStart(8)} requests a week  ${(w.shareOfDay * 100).toFixed(1)}% of that day's traffic`,
    );
  }
  lines.push(
    `read ${read.lines} lines from ${read.files} file(s)${read.skipped ? `; ${read.skipped} were not access log lines and were left out` : ''}`,
  );
  lines.push(`--window "${q.spec}"`);
  return lines;
}

export function registerWindowCommands(program: Command, ctx: CommandContext): void {
  const window = program.command('window').description('maintenance windows for rollouts');
  window
    .command('suggest')
    .description(
      "propose the lowest-traffic window of a given length per weekday from Apache access logs (common or combined format, .gz too), ready for 'schedule create --window'",
    )
    .requiredOption('--access-log <file...>', 'access log files')
    .option('--length <duration>', 'length of the window', '2h')
    .option('--step <duration>', 'granularity of the start times', '15m')
    .option('--days <list>', 'only these weekdays, e.g. "Mon,Tue,Wed"')
    .option('--utc-offset <offset>', 'the offset to speak in (default: the one most log lines were written in)')
    .action(async (options: { accessLog: string[]; length: string; step: string; days?: string; utcOffset?: string }) => {
      const lengthMinutes = minutesOption('--length', options.length, 24 * 60);
      const stepMinutes = minutesOption('--step', options.step, 24 * 60);
      const days = options.days === undefined ? undefined : daysOption(options.days);
      const offsetMinutes = options.utcOffset === undefined ? undefined : offsetOption(options.utcOffset);
      const missing = options.accessLog.filter((f) => !existsSync(f));
      if (missing.length) throw new UsageError(`--access-log: no such file: ${missing.join(', ')}`);
      const read = await readAccessLogs(options.accessLog);
      if (read.requests.length === 0) {
        const first = read.firstSkipped
          ? `; the first line that is not: ${read.firstSkipped.file}:${read.firstSkipped.line}: ${read.firstSkipped.text}`
          : '';
        throw new UsageError(`--access-log: no Apache access log lines (common or combined format) in ${options.accessLog.join(', ')}${first}`);
      }
      const quiet = findQuietHours(read.requests, { lengthMinutes, stepMinutes, days, offsetMinutes });
      const summary = { lines: read.lines, skipped: read.skipped, files: options.accessLog.length };
      ctx.print(describeQuietHours(quiet, summary).join('\n'), { ...quiet, ...summary, firstSkipped: read.firstSkipped ?? null });
    });
}
