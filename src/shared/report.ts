/** A report for the task monitor: what ran, how it ended, and its log. */
export type ReportStatus = 'running' | 'ok' | 'nothing-to-do' | 'halted' | 'failed' | 'aborted';

export interface Report {
  /** Idempotency key: the same run writing its report twice updates one row. */
  runKey: string;
  task: string;
  machine?: string;
  status: ReportStatus;
  summary: string;
  log: string[];
  details?: Record<string, unknown>;
  startedAt: string;
  finishedAt?: string;
}
