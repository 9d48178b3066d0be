/**
 * Which lesson runs of the cluster are on, decided by workflow ids and the operational
 * database rather than by a visibility query alone. Visibility is eventually consistent
 * (with Elasticsearch, seconds behind; with SQL, behind while its queue is busy): a list
 * taken right after a start may not hold the new run. So every starter records the
 * workflow id here first (recordLessonRun), and the check describes each candidate,
 * which Temporal answers from the run's own state: the recorded ids, the fixed ids of
 * the cluster's rollback and preparation, the run holding the "updating" flag, and what
 * visibility lists (it still finds runs started before this table existed).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { FLAGS, type UpdatingFlag } from '../shared/flags';
import { searchAttributes, workflowIds } from '../shared/names';
import type { Database } from './database';

export const LESSON_RUN_TYPES = ['holdLesson', 'prepareLesson', 'rollBackLesson'] as const;
export type LessonRunType = (typeof LESSON_RUN_TYPES)[number];

/** Where the runs are looked up: the cluster (its search attribute, its rollback id) and its reference (the preparation's id). */
export interface LessonRunScope {
  cluster: string;
  reference: string;
}

/** Records a run about to be started; written again for a new run under the same id (a lesson held again). */
export async function recordLessonRun(ops: Database, workflowId: string, type: LessonRunType, recordedBy: string): Promise<void> {
  await ops.query(
    `INSERT INTO lesson_runs (workflow_id, workflow_type, recorded_by) VALUES ($1, $2, $3)
     ON CONFLICT (workflow_id) DO UPDATE SET workflow_type = EXCLUDED.workflow_type, recorded_by = EXCLUDED.recorded_by, recorded_at = now()`,
    [workflowId, type, recordedBy],
  );
}

/** A run that is on: its id, its type, and its run id (empty: recorded a moment ago, its start on the way). */
export interface RunningLessonRun {
  workflowId: string;
  type: LessonRunType;
  runId: string;
}

/** Takes back the record of a run whose start failed (a start refused because the run already exists keeps it). */
export async function forgetLessonRun(ops: Database, workflowId: string): Promise<void> {
  await ops.query('DELETE FROM lesson_runs WHERE workflow_id = $1', [workflowId]);
}

/** The runs of the given types that Temporal says are running, by workflow id. */
export async function lessonRunsOn(
  client: Client,
  ops: Database,
  scope: LessonRunScope,
  types: readonly LessonRunType[] = LESSON_RUN_TYPES,
): Promise<RunningLessonRun[]> {
  const candidates = new Set<string>();
  // Fresh: recorded in the last two minutes, by the database's own clock; such a run may be on its way to being started.
  const { rows } = await ops.query<{ workflow_id: string; workflow_type: LessonRunType; fresh: boolean }>(
    "SELECT workflow_id, workflow_type, recorded_at > now() - interval '2 minutes' AS fresh FROM lesson_runs WHERE workflow_type = ANY($1::text[])",
    [types],
  );
  const recorded = new Map(rows.map((r) => [r.workflow_id, r]));
  for (const id of recorded.keys()) candidates.add(id);
  if (types.includes('rollBackLesson')) candidates.add(workflowIds.rollBackLesson(scope.cluster));
  if (types.includes('prepareLesson')) {
    candidates.add(workflowIds.prepareLesson(scope.reference));
    const flag = await ops.query<{ value: UpdatingFlag }>('SELECT value FROM flags WHERE name = $1', [FLAGS.updating]);
    if (flag.rows[0]) candidates.add(flag.rows[0].value.workflowId);
  }
  const typeList = types.map((t) => `'${t}'`).join(', ');
  for await (const wf of client.workflow.list({
    query: `WorkflowType IN (${typeList}) AND ExecutionStatus = 'Running' AND ${searchAttributes.cluster.name} = '${scope.cluster}'`,
  })) {
    candidates.add(wf.workflowId);
  }

  const running: RunningLessonRun[] = [];
  for (const workflowId of candidates) {
    const description = await client.workflow
      .getHandle(workflowId)
      .describe()
      .catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      });
    if (!description) {
      // Recorded a moment ago and not started yet: it counts, as the run it is about to be. Older: its start never came.
      const row = recorded.get(workflowId);
      if (row?.fresh) running.push({ workflowId, type: row.workflow_type, runId: '' });
      else await ops.query("DELETE FROM lesson_runs WHERE workflow_id = $1 AND recorded_at < now() - interval '2 minutes'", [workflowId]);
      continue;
    }
    const type = description.type as LessonRunType;
    if (description.status.name === 'RUNNING') {
      if (types.includes(type)) running.push({ workflowId, type, runId: description.runId });
      continue;
    }
    // Closed: the row goes, unless it was recorded after that run closed (a new run under the same id is starting).
    // The close time is the Temporal server's clock and the row's the database's, which NTP keeps within milliseconds.
    if (recorded.has(workflowId) && description.closeTime)
      await ops.query('DELETE FROM lesson_runs WHERE workflow_id = $1 AND recorded_at < $2', [workflowId, description.closeTime]);
  }
  return running.sort((a, b) => a.workflowId.localeCompare(b.workflowId));
}
