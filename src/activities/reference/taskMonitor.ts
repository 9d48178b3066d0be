/** The task monitor: reports with status and log, in the operational database. */
import type { Database } from '../../db/database';
import type { Report } from '../../shared/report';

export function createTaskMonitorActivities(ops: Database) {
  return {
    /** Writes (or rewrites, for the same run key) one report; returns its id. */
    async writeReport(report: Report): Promise<number> {
      const { rows } = await ops.query<{ id: string }>(
        `INSERT INTO reports (run_key, task, machine, status, summary, log, details, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (run_key) DO UPDATE SET
           status = EXCLUDED.status, summary = EXCLUDED.summary, log = EXCLUDED.log, details = EXCLUDED.details,
           finished_at = EXCLUDED.finished_at, updated_at = now()
         RETURNING id`,
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
      return Number(rows[0]!.id);
    },
  };
}
