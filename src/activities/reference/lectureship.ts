/**
 * The lectureship and the flags: is this host the registered reference machine, is a
 * lesson already in progress, and the flags other machines read ("updating" while the
 * teacher prepares; "lesson-ready" once a lesson is filed).
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Database } from '../../db/database';
import { lessonRunsOn } from '../../db/lessonRuns';
import { FLAGS, type PreparationRun, type UpdatingFlag } from '../../shared/flags';

export type { PreparationRun } from '../../shared/flags';

export function lectureshipOf(ops: Database, self: { name: string; cluster: string }, temporal: () => Promise<Client>) {
  const readFlag = async <T>(name: string): Promise<T | undefined> => {
    const { rows } = await ops.query<{ value: T }>('SELECT value FROM flags WHERE name = $1', [name]);
    return rows[0]?.value;
  };

  return {
    /** This worker is the registered reference machine, or a non-retryable error says who is. */
    async check(expected: string): Promise<void> {
      const { rows } = await ops.query<{ name: string; host: string }>(
        "SELECT name, host FROM machines WHERE role = 'reference' AND retired_at IS NULL",
      );
      const registered = rows[0];
      const problem = !registered
        ? `no reference machine is registered for cluster ${self.cluster}; record the class list first (lessonplan run, or the enrollClass workflow)`
        : registered.name !== self.name
          ? `this worker is reference machine "${self.name}", but the machine registry names "${registered.name}" (${registered.host}) as the reference; only the registered reference prepares lessons`
          : expected !== self.name
            ? `the run asked for reference machine "${expected}", but this worker is "${self.name}"; start prepareLesson for the registered reference`
            : undefined;
      if (problem) throw ApplicationFailure.nonRetryable(problem, 'NotTheReference');
    },

    /**
     * Whether another lesson is in progress: a running rollout of this cluster, or the
     * "updating" flag of another preparation that still runs. A flag left by a run that
     * ended without clearing it (terminated) is stale and does not count; the answer
     * names that run and its lesson, whose inbox items nobody else will give back.
     */
    async inProgress(run: PreparationRun): Promise<{ busy: boolean; reason: string; staleRunId?: string; staleLessonId?: string }> {
      const client = await temporal();
      const rollouts = (await lessonRunsOn(client, ops, { cluster: self.cluster, reference: self.name }, ['holdLesson', 'rollBackLesson'])).map(
        (r) => r.workflowId,
      );
      if (rollouts.length > 0) return { busy: true, reason: `a lesson is still being held: ${rollouts.join(', ')}` };
      const flag = await readFlag<UpdatingFlag>(FLAGS.updating);
      if (!flag || (flag.workflowId === run.workflowId && flag.runId === run.runId)) return { busy: false, reason: 'no lesson in progress' };
      // Only a run Temporal says has ended (or never heard of) leaves a stale flag; any other answer keeps it.
      const other = await client.workflow
        .getHandle(flag.workflowId, flag.runId)
        .describe()
        .then((d) => d.status.name as string)
        .catch((err: unknown) => {
          if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
          throw err;
        });
      if (other === 'RUNNING') return { busy: true, reason: `the reference is updating since ${flag.since} (${flag.workflowId})` };
      return {
        busy: false,
        reason: `the "updating" flag of ${flag.workflowId} (${flag.runId}), since ${flag.since}, was left by a run that ended (${other}); it is taken over`,
        staleRunId: flag.runId,
        ...(flag.lessonId ? { staleLessonId: flag.lessonId } : {}),
      };
    },

    /**
     * Claims the flag for this run, in one statement: only when it is free, already this
     * run's, or held by `takeOver` (a run checked to have ended). Returns whether it did.
     */
    async setUpdating(run: PreparationRun & { lessonId: string; takeOver?: string }): Promise<boolean> {
      const value: UpdatingFlag = { workflowId: run.workflowId, runId: run.runId, lessonId: run.lessonId, since: new Date().toISOString() };
      const { rows } = await ops.query(
        `INSERT INTO flags (name, value, set_by) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, set_by = EXCLUDED.set_by, set_at = now()
         WHERE flags.value->>'runId' = $4
         RETURNING name`,
        [FLAGS.updating, JSON.stringify(value), self.name, run.takeOver ?? run.runId],
      );
      if (rows[0]) return true;
      const held = await readFlag<UpdatingFlag>(FLAGS.updating);
      return held?.runId === run.runId;
    },

    /** Unsets the flag if this run holds it (idempotent; another run's flag is left alone). */
    async clearUpdating(run: PreparationRun): Promise<boolean> {
      const { rowCount } = await ops.query("DELETE FROM flags WHERE name = $1 AND value->>'runId' = $2", [FLAGS.updating, run.runId]);
      return (rowCount ?? 0) > 0;
    },

    async setLessonReady(lesson: { lessonId: string; manifestSha256: string }): Promise<void> {
      await ops.query(
        `INSERT INTO flags (name, value, set_by) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, set_by = EXCLUDED.set_by, set_at = now()`,
        [FLAGS.lessonReady, JSON.stringify(lesson), self.name],
      );
    },

    readFlag,
  };
}
