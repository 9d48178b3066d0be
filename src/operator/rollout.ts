/** Operator actions on rollouts: build holdLesson's input from the config, and start it. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { consistencyOf, copyOrderOf, groupOrder, type ClusterConfig } from '../config/schema';
import { servingFloor } from '../shared/rolloutOrder';
import type { FiledLesson } from '../shared/lesson';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import type { HoldLessonInput } from '../shared/rollout';

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
