/** Operator actions on slaves: start (or find) a slave's slaveSync, and save through it. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { ClusterConfig } from '../config/schema';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import { SAVE_AGAIN_HINT, type SlaveSaveInput, type SlaveSaveResult, type SlaveSyncInput } from '../shared/slaveSync';

export class UnknownSlaveError extends Error {
  override readonly name = 'UnknownSlaveError';
}

export function slaveSyncInput(config: ClusterConfig, slave: string): SlaveSyncInput {
  if (!config.slaves.some((s) => s.name === slave)) {
    throw new UnknownSlaveError(`no slave named "${slave}" in the config; configured: ${config.slaves.map((s) => s.name).join(', ') || '(none)'}`);
  }
  return {
    slave,
    pollIntervalMs: config.timings.slavePollInterval,
    saveTimeoutMs: config.timings.saveTimeout,
    ...(config.alerts
      ? {
          alerts: {
            cluster: config.cluster,
            unreachableAfterMs: config.alerts.slaveUnreachableAfter,
            lagAboveBlocks: config.alerts.lagAboveBlocks,
            lagAboveSeconds: config.alerts.lagAboveSeconds / 1000,
          },
        }
      : {}),
  };
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

/**
 * A save through a slave, answered once the slave has applied it (read-your-writes). A
 * save refused because slaveSync is just starting its next run (continue-as-new) is made
 * again, a few times, after a short pause.
 */
export async function saveThroughSlave(client: Client, slave: string, save: SlaveSaveInput): Promise<SlaveSaveResult> {
  const handle = client.workflow.getHandle(workflowIds.slaveSync(slave));
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.executeUpdate<SlaveSaveResult, [SlaveSaveInput]>('save', { args: [save] });
    } catch (err) {
      const refusal = (err as { cause?: { message?: string } }).cause?.message ?? '';
      if (attempt >= 5 || !refusal.endsWith(SAVE_AGAIN_HINT)) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}
