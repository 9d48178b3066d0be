/**
 * Schedules' shared shapes: what a lessonplan schedule starts (ringSchoolBell) and what
 * it answers, and how schedules are named.
 */
import type { PrepareLessonInput } from './preparation';

export interface RingSchoolBellInput {
  /** The schedule that rang, for reports. */
  scheduleId: string;
  /** prepareLesson's input, taken from the config when the schedule was created. */
  lesson: Omit<PrepareLessonInput, 'requestedBy'>;
}

export type BellResult = { started: true; workflowId: string; runId: string } | { started: false; workflowId: string; reason: string };

/** The default schedule of a reference machine (schedule ids show in the UI's URLs: no slash). */
export const defaultScheduleId = (reference: string) => `prepare-lesson-${reference}`;

/** A memo key on each lessonplan schedule, so `schedule list` shows only ours. */
export const SCHEDULE_MEMO_KEY = 'lessonplan';
