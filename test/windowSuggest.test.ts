/**
 * `lessonplan window suggest`: Apache access log lines read for their times, the
 * quietest window per weekday found on a generated log with known quiet hours, and the
 * command as an operator runs it (its pasteable spec, its errors).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { execa } from 'execa';
import { parseAccessLogLine } from '../src/operator/accessLog';
import { findQuietHours } from '../src/operator/quietHours';
import { parseWindows } from '../src/shared/maintenanceWindow';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A combined-format line for a time, written as a server at `offset` minutes east of UTC would. */
function logLine(at: number, offset: number, combined = true): string {
  const d = new Date(at + offset * 60_000);
  const p = (n: number) => String(n).padStart(2, '0');
  const sign = offset < 0 ? '-' : '+';
  const o = Math.abs(offset);
  const time = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${sign}${p(Math.floor(o / 60))}${p(o % 60)}`;
  const common = `192.0.2.7 - - [${time}] "GET /search/quokka.json HTTP/1.1" 200 512`;
  return combined ? `${common} "https://example.org/" "Mozilla/5.0 (X11; Linux x86_64)"` : common;
}

/**
 * Two weeks of traffic in UTC+02:00: a request every 2 minutes, except in each day's
 * quiet hours: 03:00-05:00 local on weekdays, and 23:00-01:00 (past midnight) on Saturday.
 */
function generatedLog(): string[] {
  const offset = 120;
  const lines: string[] = [];
  const start = Date.parse('2026-11-02T00:00:00+02:00'); // a Monday
  for (let t = start; t < start + 14 * 86_400_000; t += 120_000) {
    const local = new Date(t + offset * 60_000);
    const day = local.getUTCDay();
    const minute = local.getUTCHours() * 60 + local.getUTCMinutes();
    const saturdayNight = (day === 6 && minute >= 23 * 60) || (day === 0 && minute < 60);
    const weekdayQuiet = day !== 6 && day !== 0 && minute >= 180 && minute < 300;
    const sundayQuiet = day === 0 && minute >= 600 && minute < 720;
    if (!saturdayNight && !weekdayQuiet && !sundayQuiet) lines.push(logLine(t, offset, t % 240_000 === 0));
  }
  return lines;
}

describe('window suggest', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-window-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('common and combined lines give the request time in UTC and the offset; other lines give nothing', () => {
    assert.deepEqual(parseAccessLogLine('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'), {
      at: Date.parse('2000-10-10T20:55:36Z'),
      offsetMinutes: -420,
    });
    assert.deepEqual(parseAccessLogLine('10.0.0.1 - - [23/Nov/2026:02:15:00 +0100] "POST /save HTTP/1.1" 201 - "-" "curl/8.0"'), {
      at: Date.parse('2026-11-23T01:15:00Z'),
      offsetMinutes: 60,
    });
    assert.equal(parseAccessLogLine('[Mon Nov 23 02:15:00 2026] [error] AH00128: File does not exist'), undefined, 'an error log line');
    assert.equal(parseAccessLogLine('10.0.0.1 - - [23/Foo/2026:02:15:00 +0100] "GET / HTTP/1.1" 200 5'), undefined, 'a bad month');
  });

  test('the quietest window of each weekday is found, including one past midnight', () => {
    const requests = generatedLog().map((l) => parseAccessLogLine(l)!);
    const quiet = findQuietHours(requests, { lengthMinutes: 120, stepMinutes: 15 });
    assert.equal(quiet.offsetMinutes, 120, "the logs' own offset");
    assert.equal(quiet.weeks, 2);
    const byDay = Object.fromEntries(quiet.windows.map((w) => [w.day, w]));
    for (const day of [1, 2, 3, 4, 5]) {
      assert.equal(byDay[day]!.startMinute, 180, `weekday ${day} starts at 03:00`);
      assert.equal(byDay[day]!.requestsPerWeek, 0);
    }
    assert.equal(byDay[6]!.startMinute, 23 * 60, 'Saturday: 23:00, running into Sunday');
    assert.equal(byDay[0]!.startMinute, 600, 'Sunday: 10:00');
    assert.equal(
      quiet.spec,
      'Mon 03:00-05:00 +02:00; Tue 03:00-05:00 +02:00; Wed 03:00-05:00 +02:00; Thu 03:00-05:00 +02:00; Fri 03:00-05:00 +02:00; Sat 23:00-01:00 +02:00; Sun 10:00-12:00 +02:00',
    );
    assert.equal(parseWindows(quiet.spec).windows.length, 7, 'the spec is one schedule create takes');
  });

  test('the command prints a spec to paste; bad input is one line and exit 2', async () => {
    const lines = generatedLog();
    const plain = path.join(dir, 'access.log');
    writeFileSync(plain, [...lines.slice(0, lines.length / 2), 'not a log line at all', ''].join('\n'));
    const gz = path.join(dir, 'access.log.2.gz');
    writeFileSync(gz, gzipSync(lines.slice(lines.length / 2).join('\n')));
    const run = (...args: string[]) => execa('node', [BIN, 'window', 'suggest', ...args], { reject: false, env: { NO_COLOR: '1' } });

    const result = await run('--access-log', plain, gz, '--days', 'Mon,Sat');
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /Mon 03:00-05:00 +0\.0 requests a week/);
    assert.match(result.stdout, /1 were not access log lines and were left out/);
    const spec = /^--window "(.*)"$/m.exec(result.stdout)?.[1];
    assert.equal(spec, 'Mon 03:00-05:00 +02:00; Sat 23:00-01:00 +02:00');
    assert.ok(parseWindows(spec!));

    const asJson = await execa('node', [
      BIN,
      '--json',
      'window',
      'suggest',
      '--access-log',
      plain,
      '--length',
      '90m',
      '--utc-offset',
      '+00:00',
      '--days',
      'Tue',
    ]);
    const json = JSON.parse(asJson.stdout) as { spec: string };
    assert.equal(json.spec, 'Tue 01:00-02:30', 'spoken in UTC when asked');

    for (const [args, message] of [
      [['--access-log', path.join(dir, 'missing.log')], /^error: --access-log: no such file: .*missing\.log$/],
      [['--access-log', plain, '--length', 'long'], /^error: --length: expected whole minutes between 1m and 24h/],
      [['--access-log', plain, '--days', 'Someday'], /^error: --days: "Someday" is not a day/],
      [[], /required option '--access-log <file\.\.\.>' not specified/],
    ] as const) {
      const bad = await run(...args);
      assert.equal(bad.exitCode, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr.split('\n')[0]!, message);
    }
  });
});
