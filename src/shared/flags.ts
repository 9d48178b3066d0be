/** The flags of the operational database: their names and what "updating" holds. */

/** A run of prepareLesson, by the ids Temporal gave it. */
export interface PreparationRun {
  workflowId: string;
  runId: string;
}

/** The "updating" flag: which preparation holds the reference, since when, for which lesson. */
export interface UpdatingFlag extends PreparationRun {
  since: string;
  lessonId?: string;
}

export const FLAGS = { updating: 'updating', lessonReady: 'lesson-ready' } as const;
