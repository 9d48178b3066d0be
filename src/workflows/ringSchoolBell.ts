/**
 * ringSchoolBell: what a Temporal Schedule starts (seed: the reference machine "would
 * update itself as soon as new data is available").
 *
 * Real action: start prepareLesson under its one workflow id, `prepare-lesson/<reference>`,
 * and return at once. A schedule cannot start prepareLesson itself, because Temporal
 * appends the scheduled time to the id of every workflow a schedule starts, and then
 * `lessonplan lesson status`, the operators' scripts and the one-run-per-reference rule
 * would all lose it. When the teacher is still at work (a run, or the rollout it holds,
 * is in progress) the bell rings for nothing: the seed's "check if still holding lesson".
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, startChild, workflowInfo } from '@temporalio/workflow';
import { searchAttributes, workflowIds } from '../shared/names';
import type { BellResult, RingSchoolBellInput } from '../shared/schedule';
import type { prepareLesson as PrepareLessonWorkflow } from './prepareLesson';

export async function ringSchoolBell(input: RingSchoolBellInput): Promise<BellResult> {
  const workflowId = workflowIds.prepareLesson(input.lesson.reference);
  try {
    const child = await startChild<typeof PrepareLessonWorkflow>('prepareLesson', {
      workflowId,
      args: [{ ...input.lesson, requestedBy: `schedule ${input.scheduleId} (${workflowInfo().workflowId})` }],
      // The bell does not wait for the lesson: the teacher's run lives on after the bell has rung.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [{ key: searchAttributes.cluster, value: input.lesson.cluster }],
    });
    return { started: true, workflowId, runId: child.firstExecutionRunId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return { started: false, workflowId, reason: `${workflowId} is still running: nothing to do this time` };
    }
    throw err;
  }
}
