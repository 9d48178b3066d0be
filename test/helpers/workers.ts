/** Real workers for a test file: started on the suite's Temporal server, stopped when the file ends. */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { lessonDir } from '../../src/activities/satellite/lessons';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createSatelliteActivities, type SatelliteActivities } from '../../src/activities/satellite';
import { ORCHESTRATION_TASK_QUEUE, satelliteTaskQueue } from '../../src/shared/names';
import { temporalEndpoint } from '../../src/stack/endpoints';
import { installRuntime } from '../../src/workers/runtime';
import { onTeardown } from './stack';
import type { ClusterConfig } from '../../src/config/schema';
import { createLogger } from '../../src/logging';
import { connectClient, type OperatorClient } from '../../src/operator/client';
import { WORKFLOWS_PATH, type Role } from '../../src/workers/roles';
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

/**
 * Real satellite workers, one per satellite of the config, each on its own task queue.
 * `wrap` lets a test put a fault in front of a real activity (a disk that corrupts a
 * file after the copy); the activities themselves are the real ones.
 */
export async function runSatelliteWorkers(
  config: ClusterConfig,
  wrap: (name: string, activities: SatelliteActivities) => SatelliteActivities = (_, a) => a,
  only: string[] = config.satellites.map((s) => s.name),
): Promise<void> {
  installRuntime(createLogger('test-worker', { pretty: false }));
  const connection = await NativeConnection.connect({ address: temporalEndpoint(config).address });
  const workers = await Promise.all(
    config.satellites
      .filter((s) => only.includes(s.name))
      .map((satellite) =>
        Worker.create({
          connection,
          namespace: config.temporal.namespace,
          taskQueue: satelliteTaskQueue(satellite.name),
          activities: wrap(satellite.name, createSatelliteActivities({ satellite })),
          shutdownGraceTime: '5s',
        }),
      ),
  );
  const running = Promise.all(workers.map((w) => w.run()));
  onTeardown(async () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running;
    await connection.close();
  });
}

/**
 * Stub activities looked up at call time, so that each test of a file can swap in a
 * fresh fake while the workers keep running. Every key answers (a proxy has no own keys).
 */
export function lateBoundActivities(get: () => Record<string, (...args: never[]) => unknown>): object {
  return new Proxy(
    {},
    {
      get:
        (_, key: string) =>
        (...args: never[]) =>
          get()[key]!(...args),
      has: () => true,
      ownKeys: () => Object.keys(get()),
      getOwnPropertyDescriptor: () => ({ enumerable: true, configurable: true }),
    },
  );
}

/**
 * The orchestration worker (the real workflow code) and, per task queue, a worker whose
 * activities are looked up at call time from `stubs` (see lateBoundActivities), on the
 * suite's Temporal server; stopped when the file ends. For tests of a workflow's logic.
 */
export async function runStubbedWorkers(
  config: ClusterConfig,
  stubs: Record<string, () => Record<string, (...args: never[]) => unknown>>,
): Promise<void> {
  installRuntime(createLogger('test-worker', { pretty: false }));
  const connection = await NativeConnection.connect({ address: temporalEndpoint(config).address });
  const namespace = config.temporal.namespace;
  const workers = await Promise.all([
    Worker.create({ connection, namespace, taskQueue: ORCHESTRATION_TASK_QUEUE, workflowsPath: WORKFLOWS_PATH }),
    ...Object.entries(stubs).map(([taskQueue, get]) => Worker.create({ connection, namespace, taskQueue, activities: lateBoundActivities(get) })),
  ]);
  const running = Promise.all(workers.map((w) => w.run()));
  onTeardown(async () => {
    workers.forEach((w) => w.shutdown());
    await running;
    await connection.close();
  });
}

/**
 * Satellite workers where `victim`'s disk damages one file right after each copy while
 * the returned counter is above zero (one damaged copy per unit): what an examination
 * must catch.
 */
export async function runSatelliteWorkersCorrupting(config: ClusterConfig, victim: string): Promise<{ corruptNext: number }> {
  const fault = { corruptNext: 0 };
  const satellite = config.satellites.find((s) => s.name === victim)!;
  await runSatelliteWorkers(config, (name, acts) =>
    name !== victim
      ? acts
      : {
          ...acts,
          async copyLesson(lesson, options) {
            const result = await acts.copyLesson(lesson, options);
            if (fault.corruptNext > 0) {
              fault.corruptNext -= 1;
              appendFileSync(path.join(lessonDir(satellite, lesson.lessonId), 'search/term0.json'), 'garbage');
            }
            return result;
          },
        },
  );
  return fault;
}
