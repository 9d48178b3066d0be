/**
 * Structured logs: one JSON object a line, or pretty lines on a terminal.
 * Secrets never reach a log line: known secret fields are redacted, and connection
 * URLs go through `redactUrl` before they are logged or put in an error.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  pretty?: boolean;
  /** Where the JSON lines go instead of standard error (tests read them back). */
  destination?: { write(line: string): void };
}

export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LESSONPLAN_LOG_LEVEL ?? 'info';
  const pretty = !options.destination && (options.pretty ?? (process.stderr.isTTY && process.env.LESSONPLAN_LOG_FORMAT !== 'json'));
  return pino(
    {
      name,
      level,
      redact: {
        paths: [
          'password',
          '*.password',
          'credential',
          '*.credential',
          'secret',
          '*.secret',
          'token',
          '*.token',
          'authorization',
          '*.authorization',
          'taskToken',
        ],
        censor: '[redacted]',
      },
    },
    options.destination ??
      (pretty ? pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } }) : pino.destination(2)),
  );
}

/** postgres://user:secret@host/db -> postgres://user:***@host/db */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^/:@]*:)[^/@]*@/i, '$1***@');
}
