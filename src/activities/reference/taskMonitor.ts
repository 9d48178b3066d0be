/**
 * The task monitor: reports with status and log, in the operational database. A report
 * that needs an operator (a halt, an abort) also goes to the configured notifier, once:
 * the row remembers when it was alerted, so the same report written again (a retried
 * activity, a replayed step) does not page anyone twice.
 */
import type { Notifier } from '../../alerts/notifier';
import type { Database } from '../../db/database';
import type { Alert, AlertKind } from '../../shared/alert';
import type { Report } from '../../shared/report';
import { resumeCommand } from '../../shared/summaries';
import { deliver } from '../common/alerts';

export interface ReportAlerting {
  cluster: string;
  notifier: Notifier;
}

export function createTaskMonitorActivities(ops: Database, alerting?: ReportAlerting) {
  return {
    /** Writes (or rewrites, for the same run key) one report; returns its id. */
    async writeReport(report: Report): Promise<number> {
      const { rows } = await ops.query<{ id: string; alerted_at: Date | null }>(
        `INSERT INTO reports (run_key, task, machine, status, summary, log, details, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (run_key) DO UPDATE SET
           status = EXCLUDED.status, summary = EXCLUDED.summary, log = EXCLUDED.log, details = EXCLUDED.details,
           finished_at = EXCLUDED.finished_at, updated_at = now()
         RETURNING id, alerted_at`,
        [
          report.runKey,
          report.task,
          report.machine ?? null,
          report.status,
          report.summary,
          report.log.join('\n'),
          JSON.stringify(report.details ?? {}),
          report.startedAt,
          report.finishedAt ?? null,
        ],
      );
      const id = Number(rows[0]!.id);
      const alert = alerting && rows[0]!.alerted_at === null ? alertFor(report, alerting.cluster) : undefined;
      if (alert) {
        // Delivered first, marked after: a crash in between sends it again, with the same key.
        await deliver(alerting!.notifier, alert);
        await ops.query('UPDATE reports SET alerted_at = now() WHERE id = $1', [id]);
      }
      return id;
    },
  };
}

/** The alert a report calls for, if any: halts and aborts of lesson runs and rollouts. */
export function alertFor(report: Report, cluster: string): Alert | undefined {
  if (report.status !== 'halted' && report.status !== 'aborted') return undefined;
  const rollout = report.task === 'holdLesson';
  if (!rollout && report.task !== 'prepareLesson') return undefined;
  const details = (report.details ?? {}) as { lessonId?: string; rollout?: unknown; halted?: { reason?: string } };
  // A run aborted while holding a lesson: its rollout reports the abort, with where each satellite stands.
  if (!rollout && report.status === 'aborted' && details.rollout) return undefined;
  const kind: AlertKind = `${rollout ? 'rollout' : 'preparation'}-${report.status}`;
  const abortLine = [...report.log].reverse().find((line) => / abort requested/.test(line));
  return {
    key: report.runKey,
    kind,
    cluster,
    workflowId: workflowIdOf(report.runKey),
    summary: `${cluster}: ${report.summary}`,
    reason:
      report.status === 'halted'
        ? (details.halted?.reason ?? report.summary)
        : abortLine?.replace(/^\S+ abort requested:? ?/, '') || 'aborted by an operator',
    ...(report.status === 'halted' ? { resumeCommand: resumeCommand(rollout ? details.lessonId : undefined) } : {}),
    at: report.finishedAt ?? new Date().toISOString(),
  };
}

/** Run keys are `<workflow id>/<run id>[/halt-n]`; workflow ids may hold slashes themselves. */
function workflowIdOf(runKey: string): string {
  const match = /^(.*)\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\/[^/]*)?$/i.exec(runKey);
  return match ? match[1]! : runKey;
}
