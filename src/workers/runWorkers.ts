/**
 * Runs the workers of one or more roles in this process until SIGINT/SIGTERM, then
 * shuts them down gracefully: pollers stop, in-flight activities get the configured
 * grace time to finish (then are cancelled), databases and the connection close.
 */
import { DefaultLogger, NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { ClusterConfig } from '../config/schema';
import type { Logger } from '../logging';
import { temporalEndpoint } from '../stack/endpoints';
import { buildRoleWorker, WORKFLOWS_PATH, type Role } from './roles';
import { installRuntime } from './runtime';

export interface RunningWorkers {
  /** Resolves when every worker has stopped and everything is closed. */
  done: Promise<void>;
  /** Starts a graceful shutdown (as SIGTERM does). */
  shutdown(): void;
  taskQueues: string[];
}

export async function startWorkers(
  config: ClusterConfig,
  roles: { role: Role; name?: string }[],
  log: Logger,
  options: { metricsAddress?: string } = {},
): Promise<RunningWorkers> {
  installRuntime(log, options.metricsAddress ?? config.metrics?.bindAddress);
  const endpoint = temporalEndpoint(config);
  const connection = await NativeConnection.connect({ address: endpoint.address });
  const built = [];
  const workers: Worker[] = [];
  try {
    for (const { role, name } of roles) built.push(await buildRoleWorker(config, role, name, log));
    // Bundle the workflow code once, however many roles run it.
    const needsBundle = built.some((b) => b.options.workflowsPath);
    const workflowBundle = needsBundle ? await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') }) : undefined;
    for (const b of built) {
      const { workflowsPath, ...rest } = b.options;
      workers.push(
        await Worker.create({
          connection,
          namespace: endpoint.namespace,
          ...rest,
          ...(workflowsPath ? { workflowBundle } : {}),
          shutdownGraceTime: config.workers.shutdownGraceTime,
          identity: `${b.role}:${b.name}@${process.pid}`,
        }),
      );
    }
  } catch (err) {
    await Promise.all(built.map((b) => b.close()));
    await connection.close();
    throw err;
  }
  const taskQueues = workers.map((w) => w.options.taskQueue);
  log.info({ taskQueues, temporal: endpoint.address, namespace: endpoint.namespace }, 'workers polling');
  const done = (async () => {
    const results = await Promise.allSettled(workers.map((w) => w.run()));
    await Promise.all(built.map((b) => b.close()));
    await connection.close();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    log.info({ taskQueues }, 'workers stopped');
  })();
  return {
    done,
    shutdown: () => workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown()),
    taskQueues,
  };
}
