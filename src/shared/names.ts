/**
 * Public names: task queues, workflow ids and search attributes. Operators and scripts
 * use them, so they are defined once here and imported everywhere.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The orchestration worker's queue: workflow code only. */
export const ORCHESTRATION_TASK_QUEUE = 'lessonplan';
/** The reference machine's queue: reference database, lesson files, indexes, tests. */
export const REFERENCE_TASK_QUEUE = 'reference';
/** The master's queue. */
export const MASTER_TASK_QUEUE = 'master';

export const satelliteTaskQueue = (satellite: string) => `satellite-${satellite}`;
export const slaveTaskQueue = (slave: string) => `slave-${slave}`;

export const workflowIds = {
  enrollClass: (reference: string) => `enroll-class/${reference}`,
  prepareLesson: (reference: string) => `prepare-lesson/${reference}`,
  holdLesson: (lessonId: string) => `hold-lesson/${lessonId}`,
  /** One rollback of a cluster at a time: the id is the cluster's. */
  rollBackLesson: (cluster: string) => `roll-back/${cluster}`,
  slaveSync: (slave: string) => `slave-sync/${slave}`,
} as const;

/**
 * Custom search attributes the workflows set, so that the Temporal UI can list, say,
 * every halted rollout. The embedded dev server registers them at start.
 */
export const searchAttributes = {
  cluster: defineSearchAttributeKey('LessonplanCluster', SearchAttributeType.KEYWORD),
  lessonId: defineSearchAttributeKey('LessonId', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('LessonPhase', SearchAttributeType.KEYWORD),
  halted: defineSearchAttributeKey('LessonHalted', SearchAttributeType.BOOL),
} as const;
