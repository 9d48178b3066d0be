/**
 * What `lesson watch` draws: the reference's run and the rollout it started, read by their
 * `status` queries while they run. The last frame, once the run has ended, is read from the
 * runs' results instead: a query of a closed run needs a worker to replay its history, and
 * by then the worker may be down, busy or slow; a result is in the history itself.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { PreparationStatus } from '../shared/preparation';
import type { RolloutStatus } from '../shared/rollout';

export interface RunStatus {
  prep: PreparationStatus;
  /** Undefined before the rollout starts, or when it cannot be read this time. */
  rollout?: RolloutStatus;
}

/** `ended` is the reference run's result once it has one: the final frame is drawn from it. */
export async function readRun(client: Client, workflowId: string, ended?: PreparationStatus): Promise<RunStatus> {
  const prep = ended ?? (await client.workflow.getHandle(workflowId).query<PreparationStatus>('status'));
  const rolloutId = prep.rollout?.workflowId;
  if (!rolloutId) return { prep };
  const handle = client.workflow.getHandle(rolloutId);
  const rollout = await (ended ? finalStatus(handle) : handle.query<RolloutStatus>('status')).catch(() => undefined);
  return { prep, rollout };
}

/** A closed rollout's result is its final status; one still running (or failed) is asked. */
async function finalStatus(handle: WorkflowHandle): Promise<RolloutStatus> {
  const { status } = await handle.describe();
  if (status.name === 'COMPLETED') return (await handle.result()) as RolloutStatus;
  return handle.query<RolloutStatus>('status');
}
