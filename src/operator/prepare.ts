/** Operator actions on prepareLesson: its input from the config, and starting it (one per reference). */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { ClusterConfig } from '../config/schema';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import type { PrepareLessonInput } from '../shared/preparation';
import type { prepareLesson } from '../workflows/prepareLesson';
import { rolloutPlan } from './rollout';

export function prepareLessonInput(config: ClusterConfig, requestedBy: string): PrepareLessonInput {
  return {
    cluster: config.cluster,
    reference: config.reference.name,
    subjects: config.reference.subjects,
    ...(config.reference.ownSubjects.length > 0 ? { ownSubjects: config.reference.ownSubjects.map((o) => o.name) } : {}),
    rollout: rolloutPlan(config),
    requestedBy,
  };
}

export class PreparationRunning extends Error {
  override readonly name = 'PreparationRunning';
  constructor(readonly workflowId: string) {
    super(`a prepareLesson run is already in progress (${workflowId}); watch it, or wait until it ends`);
  }
}

/**
 * Starts prepareLesson under its fixed workflow id, so that at most one runs per
 * reference machine: a second start while one runs is refused (PreparationRunning).
 */
export async function startPrepareLesson(
  client: Client,
  config: ClusterConfig,
  requestedBy = 'operator',
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof prepareLesson>> {
  const workflowId = workflowIds.prepareLesson(config.reference.name);
  try {
    return await client.workflow.start<typeof prepareLesson>('prepareLesson', {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId,
      workflowIdConflictPolicy: 'FAIL',
      args: [prepareLessonInput(config, requestedBy)],
      typedSearchAttributes: [{ key: searchAttributes.cluster, value: config.cluster }],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new PreparationRunning(workflowId);
    throw err;
  }
}
