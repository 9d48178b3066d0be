/** Operator actions on rollouts: build holdLesson's input from the config, and start it. */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { consistencyOf, copyOrderOf, groupOrder, type ClusterConfig } from '../config/schema';
import { servingFloor } from '../shared/rolloutOrder';
import type { FiledLesson } from '../shared/lesson';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import type { HoldLessonInput, RollBackInput } from '../shared/rollout';
import type { rollBackLesson } from '../workflows/rollBackLesson';
import { DatabaseError, openDatabase, type Database } from '../db/database';
import { forgetLessonRun, lessonRunsOn, recordLessonRun } from '../db/lessonRuns';
import { databaseUrl } from '../stack/endpoints';

/**
 * Runs `work` with the cluster's operational database, closed afterwards. The CLI never
 * migrates it (a newer CLI would move the schema ahead of the workers): the reference
 * worker does, at start.
 */
export async function withOperationalDatabase<T>(config: ClusterConfig, work: (ops: Database) => Promise<T>): Promise<T> {
  const ops = openDatabase(databaseUrl(config, config.operationalDatabase), { max: 1, applicationName: 'lessonplan-cli' });
  try {
    return await work(ops);
  } catch (err) {
    if (err instanceof DatabaseError && err.code === UNDEFINED_TABLE) {
      throw new Error(
        `the operational database ${config.operationalDatabase.name} lacks a table of this lessonplan version (${err.message}); ` +
          'the reference worker applies its migrations at start: start (or restart) it with this version first',
      );
    }
    throw err;
  } finally {
    await ops.close();
  }
}

/** PostgreSQL's SQLSTATE for a table that does not exist. */
const UNDEFINED_TABLE = '42P01';

/** Starts a recorded run; a start that fails takes its record back, unless the run is there already. */
async function startRecorded<T>(config: ClusterConfig, workflowId: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError))
      await withOperationalDatabase(config, (ops) => forgetLessonRun(ops, workflowId)).catch(() => undefined);
    throw err;
  }
}

/**
 * The ids of the cluster's lesson runs that are on (holdLesson, prepareLesson,
 * rollBackLesson), decided by workflow id and the operational database: see src/db/lessonRuns.ts.
 */
export async function lessonRunsOfCluster(client: Client, config: ClusterConfig, ops: Database): Promise<string[]> {
  const running = await lessonRunsOn(client, ops, { cluster: config.cluster, reference: config.reference.name });
  return running.map((r) => r.workflowId);
}

/** Satellites that keep serving while a group is in the classroom (default: all groups but the largest). */
export function minServingSatellites(config: ClusterConfig): number {
  return servingFloor(
    groupOrder(config).map((g) => config.satellites.filter((s) => s.group === g).length),
    config.groups.minServingGroups,
  );
}

export function holdLessonInput(config: ClusterConfig, lesson: FiledLesson, requestedBy: string): HoldLessonInput {
  return { ...rolloutPlan(config), lesson, requestedBy };
}

/** How the config says a lesson is held: everything of holdLesson's input but the lesson. */
export function rolloutPlan(config: ClusterConfig): Omit<HoldLessonInput, 'lesson' | 'requestedBy'> {
  return {
    cluster: config.cluster,
    groups: groupOrder(config).map((name) => ({ name, satellites: config.satellites.filter((s) => s.group === name).map((s) => s.name) })),
    loadBalancerControl: config.loadBalancer.kind === 'haproxy',
    healthCheckWaitMs: config.loadBalancer.kind === 'none' ? config.loadBalancer.healthCheckWait : 0,
    ...(config.loadBalancer.kind === 'haproxy'
      ? { drainDeadlineMs: config.loadBalancer.drainDeadline, healthyDeadlineMs: config.loadBalancer.healthyDeadline }
      : {}),
    lastCigaretteMs: config.timings.lastCigarette,
    coffeeMs: config.timings.coffee,
    minServingSatellites: minServingSatellites(config),
    consistency: consistencyOf(config),
    copy: copyOrderOf(config),
    ...(config.groups.copiesAtOnce ? { copiesAtOnce: config.groups.copiesAtOnce } : {}),
  };
}

/** Starts holdLesson for a lesson (workflow id `hold-lesson/<lessonId>`), recorded first in the operational database. */
export async function startHoldLesson(client: Client, config: ClusterConfig, lesson: FiledLesson, requestedBy = 'operator'): Promise<WorkflowHandle> {
  const workflowId = workflowIds.holdLesson(lesson.lessonId);
  await withOperationalDatabase(config, (ops) => recordLessonRun(ops, workflowId, 'holdLesson', requestedBy));
  return startRecorded(config, workflowId, () =>
    client.workflow.start('holdLesson', {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId,
      args: [holdLessonInput(config, lesson, requestedBy)],
      typedSearchAttributes: [
        { key: searchAttributes.cluster, value: config.cluster },
        { key: searchAttributes.lessonId, value: lesson.lessonId },
      ],
    }),
  );
}

/** rollBackLesson's input from the config: the rollout plan, and the lesson to go back to (absent: the one before). */
export function rollBackInput(config: ClusterConfig, toLessonId: string | undefined, requestedBy: string): RollBackInput {
  const { copy: _copy, copiesAtOnce: _atOnce, ...plan } = rolloutPlan(config);
  return { ...plan, requestedBy, ...(toLessonId ? { toLessonId } : {}) };
}

/**
 * Starts the cluster's rollback (workflow id `roll-back/<cluster>`); refused while a
 * rollout, a lesson run or another rollback of this cluster is on. The workflow itself
 * refuses, before changing anything, when a satellite no longer holds the lesson.
 */
export async function startRollBack(client: Client, config: ClusterConfig, toLessonId?: string, requestedBy = 'lessonplan lesson rollback') {
  const workflowId = workflowIds.rollBackLesson(config.cluster);
  await withOperationalDatabase(config, async (ops) => {
    const running = await lessonRunsOfCluster(client, config, ops);
    if (running.length > 0)
      throw new Error(`not now: ${running.join(', ')} still runs; roll back once it has ended (or abort it: that puts the lesson before back)`);
    await recordLessonRun(ops, workflowId, 'rollBackLesson', requestedBy);
  });
  return startRecorded(config, workflowId, () =>
    client.workflow.start<typeof rollBackLesson>('rollBackLesson', {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId,
      args: [rollBackInput(config, toLessonId, requestedBy)],
      typedSearchAttributes: [{ key: searchAttributes.cluster, value: config.cluster }],
    }),
  );
}
