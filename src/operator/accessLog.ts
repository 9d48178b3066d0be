/**
 * Apache access logs in the Common and Combined Log Formats, read for their request
 * times: `host ident user [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 2326 ...`.
 * Only the bracketed time matters here; the rest of the line must still look like a
 * log line, so that a file of something else is noticed instead of counted.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';

export interface LoggedRequest {
  /** Epoch milliseconds. */
  at: number;
  /** The line's UTC offset in minutes east, as the server wrote it. */
  offsetMinutes: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// host ident user [time] "request" status bytes (then, in the combined format, referer and agent)
const LINE = /^\S+ \S+ .*?\[(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "[^"]*" \d{3} (?:\d+|-)/;

/** One line's request, or undefined when it is not a Common/Combined log line. */
export function parseAccessLogLine(line: string): LoggedRequest | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const [, day, mon, year, hh, mm, ss, sign, oh, om] = m;
  const month = MONTHS.indexOf(mon!);
  if (month < 0) return undefined;
  const offsetMinutes = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  const localAsUtc = Date.UTC(Number(year), month, Number(day), Number(hh), Number(mm), Number(ss));
  if (Number.isNaN(localAsUtc)) return undefined;
  return { at: localAsUtc - offsetMinutes * 60_000, offsetMinutes };
}

export interface LogReadResult {
  requests: LoggedRequest[];
  lines: number;
  /** Lines that were not log lines: counted, and shown to the operator with the first one. */
  skipped: number;
  firstSkipped?: { file: string; line: number; text: string };
}

/** Reads log files line by line (gzip when the name ends in .gz). */
export async function readAccessLogs(files: string[]): Promise<LogReadResult> {
  const result: LogReadResult = { requests: [], lines: 0, skipped: 0 };
  for (const file of files) {
    const raw = createReadStream(file);
    const input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
    let n = 0;
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      n += 1;
      if (line.trim() === '') continue;
      result.lines += 1;
      const request = parseAccessLogLine(line);
      if (request) result.requests.push(request);
      else {
        result.skipped += 1;
        result.firstSkipped ??= { file, line: n, text: line.slice(0, 120) };
      }
    }
  }
  return result;
}
