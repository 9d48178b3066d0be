/**
 * rollBackLesson: the cluster goes back to a lesson every satellite still holds, group by
 * group, without copying (workflow id `roll-back/<cluster>`).
 *
 * First, before anything changes: which lesson (the one named, or the one filed before
 * what most satellites serve), its description from the reference (the manifest's sha256
 * and the reference's test queries), and whether every satellite still holds a complete
 * copy. Any of these missing refuses the rollback, with the reason, and nothing has been
 * touched. Then holdLesson's switch runs, group by group, as a rollout copying while
 * serving does after its examinations: drain, stop, repoint, start, the quick check
 * through the users' port, back in. It halts, resumes and aborts like a rollout (abort:
 * back on what each satellite served before the rollback), and answers the same `status`.
 */
import { ApplicationFailure, proxyActivities, setHandler } from '@temporalio/workflow';
import type { ReferenceActivities } from '../activities/reference';
import type { SatelliteActivities } from '../activities/satellite';
import { REFERENCE_TASK_QUEUE, satelliteTaskQueue } from '../shared/names';
import type { RollBackInput, RolloutStatus } from '../shared/rollout';
import { holdLesson, mostCommon, statusQuery } from './holdLesson';

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 5 } as const;

const reference = proxyActivities<ReferenceActivities>({
  taskQueue: REFERENCE_TASK_QUEUE,
  startToCloseTimeout: '1m',
  scheduleToCloseTimeout: '5m',
  retry: { ...retry, nonRetryableErrorTypes: ['LessonNotKept'] },
  summary: 'the lesson to go back to',
});

const satellite = (name: string) =>
  proxyActivities<SatelliteActivities>({
    taskQueue: satelliteTaskQueue(name),
    startToCloseTimeout: '2m',
    scheduleToCloseTimeout: '5m',
    retry,
    summary: `does ${name} still hold it`,
  });

export async function rollBackLesson(input: RollBackInput): Promise<RolloutStatus> {
  const { toLessonId, ...plan } = input;
  const names = plan.groups.flatMap((g) => g.satellites);
  // Until the switch begins (and its own status takes over): where the rollback stands.
  const checking: RolloutStatus = {
    lessonId: toLessonId ?? '(the lesson before)',
    phase: 'starting',
    halted: null,
    paused: false,
    groups: plan.groups.map((g) => ({
      name: g.name,
      state: 'waiting',
      satellites: g.satellites.map((name) => ({ name, state: 'serving-old', filesCopied: 0, bytesCopied: 0, bytesSent: 0 })),
    })),
    serving: 0,
    minServing: plan.minServingSatellites,
  };
  setHandler(statusQuery, () => checking, { description: 'Where the rollback stands: finding the lesson, then as a rollout' });

  // What the cluster serves now, and the lesson to go back to.
  const services = await Promise.all(names.map((name) => satellite(name).describeService()));
  const current = mostCommon(services.map((s) => s.current));
  const lesson = await reference.findKeptLesson({ lessonId: toLessonId, current });
  checking.lessonId = lesson.lessonId;
  if (services.every((s) => s.current === lesson.lessonId)) {
    throw ApplicationFailure.nonRetryable(`every satellite serves lesson ${lesson.lessonId} already: nothing to roll back`, 'NothingToRollBack');
  }

  // Every satellite holds it, complete and as filed: else refused, before anything changes.
  const kept = await Promise.all(names.map((name) => satellite(name).keptLesson(lesson)));
  const missing = kept.flatMap((k) => (k.kept ? [] : [k.reason!]));
  if (missing.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `cannot roll back to lesson ${lesson.lessonId} without copying: ${missing.join('; ')}. Nothing was changed; hold the lesson again instead (lessonplan lesson hold, or a new rollout)`,
      'LessonNotKept',
    );
  }
  return holdLesson({ ...plan, lesson, copy: 'while-serving', rollback: true });
}
