/**
 * The Temporal runtime of a worker process: installed once, logging through pino, and
 * with a metrics address, serving Prometheus at http://<address>/metrics: the SDK's own
 * figures (temporal_*) and the project's (lessonplan_*, see src/shared/metrics.ts).
 */
import { DefaultLogger, Runtime, type LogLevel, type RuntimeOptions } from '@temporalio/worker';
import type { Logger } from '../logging';
import { METRICS } from '../shared/metrics';

let installed = false;

/** Warnings that are normal here: host workers run only activities, the orchestration worker only workflows. */
const EXPECTED = ['No activities registered', 'No workflows registered'];

/** The signals on which a worker process stops gracefully. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export class MetricsAddressError extends Error {
  override readonly name = 'MetricsAddressError';
}

/** Installs the runtime once per process (the SDK allows one install; later calls change nothing). */
export function installRuntime(log: Logger, metricsAddress?: string): void {
  if (installed) return;
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  const options: RuntimeOptions = {
    // Workflow and activity lines keep their level and come with their ids (workflowId,
    // runId, activityId...: the SDK adds them); the SDK's own lifecycle lines (worker
    // state changes) are noise for operators at info and go to debug.
    logger: new DefaultLogger(log.isLevelEnabled('debug') ? 'DEBUG' : 'INFO', (entry) => {
      const component = entry.meta?.sdkComponent;
      const ours = component === 'workflow' || component === 'activity';
      const level = EXPECTED.some((text) => entry.message.startsWith(text)) || (!ours && entry.level === 'INFO') ? 'debug' : levels[entry.level];
      log[level](entry.meta ?? {}, entry.message);
    }),
    // SIGINT and SIGTERM start a graceful shutdown of every worker in this process.
    shutdownSignals: [...STOP_SIGNALS],
    ...(metricsAddress ? { telemetryOptions: { metrics: { prometheus: prometheusOptions(metricsAddress) } } } : {}),
  };
  try {
    Runtime.install(options);
  } catch (err) {
    if (!metricsAddress) throw err;
    throw new MetricsAddressError(`metrics.bindAddress ${metricsAddress}: the Prometheus endpoint cannot listen there: ${(err as Error).message}`);
  }
  installed = true;
  if (metricsAddress) log.info({ metrics: `http://${metricsAddress}/metrics` }, 'Prometheus metrics served');
}

/** Prometheus conventions: counters end in _total, durations in seconds. */
function prometheusOptions(bindAddress: string) {
  return {
    bindAddress,
    countersTotalSuffix: true,
    useSecondsForDurations: true,
    // A group is out of service for minutes to hours, not the SDK's default sub-10-second range.
    histogramBucketOverrides: { [METRICS.groupRolloutSeconds.name]: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400] },
  };
}
