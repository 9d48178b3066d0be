/** Maintenance window specs: parsing, their errors, and when a window is open or opens next. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatWindows, isOpen, nextClosing, nextOpening, parseWindows, WindowSpecError } from '../src/shared/maintenanceWindow';

// 2026-11-23 is a Monday.
const at = (iso: string) => Date.parse(iso);

describe('maintenance windows', () => {
  test('specs parse into days, start, length and offset, and print back the same', () => {
    const w = parseWindows('Mon-Fri 02:00-04:00 +01:00; sat,SUN 23:30-01:00 -0700; Wed 12:00-13:00 Z');
    assert.deepEqual(w.windows, [
      { days: [1, 2, 3, 4, 5], startMinute: 120, lengthMinutes: 120, offsetMinutes: 60 },
      { days: [0, 6], startMinute: 1410, lengthMinutes: 90, offsetMinutes: -420 },
      { days: [3], startMinute: 720, lengthMinutes: 60, offsetMinutes: 0 },
    ]);
    assert.equal(formatWindows(w), 'Mon-Fri 02:00-04:00 +01:00; Sat,Sun 23:30-01:00 -07:00; Wed 12:00-13:00');
    for (const spec of ['daily 00:00-24:00', 'Fri-Mon 22:00-02:00 +05:30', 'Mon,Wed,Fri 01:00-01:00', 'Mon-Wed,Sat 03:15-04:45']) {
      assert.deepEqual(parseWindows(formatWindows(parseWindows(spec))), parseWindows(spec), spec);
    }
    assert.deepEqual(parseWindows('Fri-Mon 22:00-02:00').windows[0]!.days, [0, 1, 5, 6], 'a range may wrap the week');
    assert.equal(parseWindows('Mon,Wed,Fri 01:00-01:00').windows[0]!.lengthMinutes, 24 * 60, 'equal start and end: a whole day');
  });

  test('bad specs name the part and what is wrong', () => {
    const refused = (spec: string, message: RegExp) =>
      assert.throws(
        () => parseWindows(spec),
        (err: Error) => err instanceof WindowSpecError && message.test(err.message),
        spec,
      );
    refused('Mon 25:00-02:00', /^"Mon 25:00-02:00": hour 25 is not a time of day$/);
    refused('Mon 02:61-03:00', /minute 61/);
    refused('Funday 02:00-03:00', /"Funday" is not a day/);
    refused('Mon 2-3', /"2" is not a time of day/);
    refused('Mon 02:00-03:00 CET', /"CET" is not a UTC offset/);
    refused('Mon', /expected "<days> <HH:MM>-<HH:MM> \[<offset>\]"/);
    refused(' ; ', /an empty maintenance window/);
    refused('Mon 24:00-02:00', /hour 24/);
  });

  test('open, next opening and closing, in UTC and with offsets', () => {
    const w = parseWindows('Mon-Fri 02:00-04:00');
    assert.equal(isOpen(w, at('2026-11-23T03:00:00Z')), true);
    assert.equal(isOpen(w, at('2026-11-23T04:00:00Z')), false, 'the end is not inside');
    assert.equal(nextOpening(w, at('2026-11-23T03:00:00Z')), at('2026-11-23T03:00:00Z'), 'open now: now');
    assert.equal(nextOpening(w, at('2026-11-23T05:00:00Z')), at('2026-11-24T02:00:00Z'));
    assert.equal(nextOpening(w, at('2026-11-27T05:00:00Z')), at('2026-11-30T02:00:00Z'), 'Friday after the window: next Monday');
    assert.equal(nextClosing(w, at('2026-11-23T02:30:00Z')), at('2026-11-23T04:00:00Z'));
    assert.equal(nextClosing(w, at('2026-11-23T05:00:00Z')), undefined);

    const east = parseWindows('Mon 01:00-02:00 +03:00'); // Sunday 22:00-23:00 UTC
    assert.equal(isOpen(east, at('2026-11-22T22:30:00Z')), true);
    assert.equal(nextOpening(east, at('2026-11-23T12:00:00Z')), at('2026-11-29T22:00:00Z'));
    const west = parseWindows('Sun 23:00-01:00 -05:00'); // Monday 04:00-06:00 UTC
    assert.equal(isOpen(west, at('2026-11-23T05:59:00Z')), true);
    assert.equal(isOpen(west, at('2026-11-23T06:00:00Z')), false);
  });

  test('past midnight and across the week end', () => {
    const w = parseWindows('Sun 23:00-01:30');
    assert.equal(isOpen(w, at('2026-11-23T01:00:00Z')), true, 'Monday 01:00 is inside Sunday night');
    assert.equal(nextClosing(w, at('2026-11-22T23:10:00Z')), at('2026-11-23T01:30:00Z'));
    assert.equal(nextOpening(w, at('2026-11-23T02:00:00Z')), at('2026-11-29T23:00:00Z'));
  });

  test('overlapping and touching windows close at the end of the last one', () => {
    const w = parseWindows('daily 01:00-03:00; Mon 02:00-05:00; Mon 05:00-06:00');
    assert.equal(nextClosing(w, at('2026-11-23T01:30:00Z')), at('2026-11-23T06:00:00Z'));
    assert.equal(nextClosing(w, at('2026-11-24T01:30:00Z')), at('2026-11-24T03:00:00Z'));
    assert.equal(isOpen(parseWindows('daily 00:00-24:00'), at('2026-11-25T17:42:00Z')), true);
    assert.equal(nextClosing(parseWindows('daily 00:00-24:00'), at('2026-11-25T17:42:00Z'))! > at('2026-11-30T00:00:00Z'), true);
  });
});
