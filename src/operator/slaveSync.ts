/** Operator actions on slaves: start (or find) a slave's slaveSync, and save through it. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { ClusterConfig } from '../config/schema';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import type { SlaveSaveInput, SlaveSaveResult, SlaveSyncInput } from '../shared/slaveSync';

export class UnknownSlaveError extends Error {
  override readonly name = 'UnknownSlaveError';
}

export function slaveSyncInput(config: ClusterConfig, slave: string): SlaveSyncInput {
  if (!config.slaves.some((s) => s.name === slave)) {
    throw new UnknownSlaveError(`no slave named "${slave}" in the config; configured: ${config.slaves.map((s) => s.name).join(', ') || '(none)'}`);
  }
  return { slave, pollIntervalMs: config.timings.slavePollInterval, saveTimeoutMs: config.timings.saveTimeout };
}

/** Starts the slave's slaveSync, or returns the one already running (one per slave, ever). */
export async function startSlaveSync(client: Client, config: ClusterConfig, slave: string): Promise<WorkflowHandle> {
  return client.workflow.start('slaveSync', {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: workflowIds.slaveSync(slave),
    args: [slaveSyncInput(config, slave)],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [{ key: searchAttributes.cluster, value: config.cluster }],
  });
}

/** A save through a slave, answered once the slave has applied it (read-your-writes). */
export function saveThroughSlave(client: Client, slave: string, save: SlaveSaveInput): Promise<SlaveSaveResult> {
  return client.workflow.getHandle(workflowIds.slaveSync(slave)).executeUpdate<SlaveSaveResult, [SlaveSaveInput]>('save', { args: [save] });
}
