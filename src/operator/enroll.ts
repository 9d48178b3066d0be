/** Operator action: record the config's class list in the machine registry (workflow enrollClass). */
import type { Client } from '@temporalio/client';
import type { ClusterConfig } from '../config/schema';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import { rosterFromConfig, type EnrollmentResult } from '../shared/roster';

export async function enrollClass(client: Client, config: ClusterConfig): Promise<{ workflowId: string; runId: string; result: EnrollmentResult }> {
  const workflowId = workflowIds.enrollClass(config.reference.name);
  const handle = await client.workflow.start('enrollClass', {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId,
    args: [rosterFromConfig(config)],
    // A new enrollment replaces one still running for the same reference machine.
    workflowIdConflictPolicy: 'TERMINATE_EXISTING',
    workflowExecutionTimeout: '10m',
    typedSearchAttributes: [{ key: searchAttributes.cluster, value: config.cluster }],
  });
  const result = (await handle.result()) as EnrollmentResult;
  return { workflowId, runId: handle.firstExecutionRunId, result };
}
