/** The Temporal runtime of a worker process: installed once, logging through pino. */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../logging';

let installed = false;

/** Warnings that are normal here: host workers run only activities, the orchestration worker only workflows. */
const EXPECTED = ['No activities registered', 'No workflows registered'];

/** Installs the runtime once per process (the SDK allows one install). */
export function installRuntime(log: Logger): void {
  if (installed) return;
  installed = true;
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  Runtime.install({
    // The SDK's own lifecycle lines (worker state changes) are noise for operators at info.
    logger: new DefaultLogger(log.isLevelEnabled('debug') ? 'DEBUG' : 'WARN', (entry) => {
      const level = EXPECTED.some((text) => entry.message.startsWith(text)) ? 'debug' : levels[entry.level];
      log[level](entry.meta ?? {}, entry.message);
    }),
    // SIGINT and SIGTERM start a graceful shutdown of every worker in this process.
    shutdownSignals: ['SIGINT', 'SIGTERM'],
  });
}
