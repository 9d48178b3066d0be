/** Real workers for a test file: started on the suite's Temporal server, stopped when the file ends. */
import { onTeardown } from './stack';
import type { ClusterConfig } from '../../src/config/schema';
import { createLogger } from '../../src/logging';
import { connectClient, type OperatorClient } from '../../src/operator/client';
import type { Role } from '../../src/workers/roles';
import { startWorkers, type RunningWorkers } from '../../src/workers/runWorkers';

export async function runWorkersForTest(config: ClusterConfig, roles: { role: Role; name?: string }[]): Promise<RunningWorkers> {
  const workers = await startWorkers(config, roles, createLogger('test-worker', { pretty: false }));
  onTeardown(async () => {
    workers.shutdown();
    await workers.done;
  });
  return workers;
}

export async function clientForTest(config: ClusterConfig): Promise<OperatorClient> {
  const operator = await connectClient(config);
  onTeardown(() => operator.close());
  return operator;
}
