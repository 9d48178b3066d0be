/** Operator actions on rollouts: build holdLesson's input from the config, and start it. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { consistencyOf, copyOrderOf, groupOrder, type ClusterConfig } from '../config/schema';
import { servingFloor } from '../shared/rolloutOrder';
import type { FiledLesson } from '../shared/lesson';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import type { HoldLessonInput, RollBackInput } from '../shared/rollout';
import type { rollBackLesson } from '../workflows/rollBackLesson';

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

export async function startHoldLesson(client: Client, config: ClusterConfig, lesson: FiledLesson, requestedBy = 'operator'): Promise<WorkflowHandle> {
  return client.workflow.start('holdLesson', {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: workflowIds.holdLesson(lesson.lessonId),
    args: [holdLessonInput(config, lesson, requestedBy)],
    typedSearchAttributes: [
      { key: searchAttributes.cluster, value: config.cluster },
      { key: searchAttributes.lessonId, value: lesson.lessonId },
    ],
  });
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
  const running: string[] = [];
  for await (const wf of client.workflow.list({
    query: `WorkflowType IN ('holdLesson', 'prepareLesson', 'rollBackLesson') AND ExecutionStatus = 'Running' AND ${searchAttributes.cluster.name} = '${config.cluster}'`,
  })) {
    running.push(wf.workflowId);
  }
  if (running.length > 0)
    throw new Error(`not now: ${running.join(', ')} still runs; roll back once it has ended (or abort it: that puts the lesson before back)`);
  return client.workflow.start<typeof rollBackLesson>('rollBackLesson', {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: workflowIds.rollBackLesson(config.cluster),
    args: [rollBackInput(config, toLessonId, requestedBy)],
    typedSearchAttributes: [{ key: searchAttributes.cluster, value: config.cluster }],
  });
}
