/**
 * prepareLesson's shared shapes: its input, the status its query returns, and what the
 * reference machine's steps report back. Small on purpose: they live in workflow history.
 */
import type { FiledLesson } from './lesson';
import type { HoldLessonInput, RolloutStatus } from './rollout';

export interface PrepareLessonInput {
  cluster: string;
  /** The reference machine this run must be on (the lectureship). */
  reference: string;
  /** Subjects in the order they are prepared. */
  subjects: string[];
  /** Those of the cluster's own (reference.subjects with commands); the rest are the built-in catalog's. */
  ownSubjects?: string[];
  /** How the lesson is held, once filed: holdLesson's input without the lesson. */
  rollout: Omit<HoldLessonInput, 'lesson' | 'requestedBy'>;
  /** Who started it: "schedule", "operator", "main job"... for reports. */
  requestedBy: string;
}

export type PreparationPhase =
  | 'checking-lectureship'
  | 'checking-lessons-in-progress'
  | 'preparing'
  | 'proof-reading'
  | 'filing'
  | 'calling-scholars'
  | 'holding-lesson'
  | 'finishing'
  | 'halted'
  | 'done'
  | 'nothing-to-do'
  | 'busy'
  | 'aborted'
  | 'failed';

/** What one subject brought to the lesson. */
export interface SubjectProgress {
  subject: string;
  /** Items waiting in the inbox when the subject was checked. */
  waiting: number;
  /** Changes prepared earlier but never filed (an aborted run); they go out with this lesson. */
  unfiled: number;
  taken: number;
  applied: number;
  /** Items refused (bad id or payload); marked in the inbox with the reason, not lost. */
  refused: number;
  /** A subject of the cluster's own: the end of what its check command printed. */
  found?: string;
  proofRead?: ProofReadResult;
}

/** What the step that updates the reference database and writes the lesson files did. */
export interface PreparedSubject {
  subject: string;
  taken: number;
  applied: number;
  refused: { inboxId: number; externalId: string; reason: string }[];
  /** Lesson files written this time (changed content only; the rest stays hard-linked). */
  filesWritten: number;
  filesRemoved: number;
}

export interface ProofReadResult {
  passed: boolean;
  checks: number;
  failures: string[];
  /** Answers the satellites must reproduce in their examination. */
  testQueries: FiledLesson['testQueries'];
  /** A word of the new subject matter and a title the search must show for it. */
  searchProbe?: FiledLesson['searchProbe'];
}

export interface LessonStats {
  records: number;
  documents: number;
  files: number;
  totalBytes: number;
  filesAdded: number;
  filesChanged: number;
  filesRemoved: number;
  /** Bytes of the added and changed files: what rsync should move. */
  bytesChanged: number;
  backupFile: string;
  backupBytes: number;
}

export interface FiledPreparation {
  lesson: FiledLesson;
  stats: LessonStats;
  pruned: string[];
}

export interface PreparationHalt {
  step: string;
  reason: string;
  since: string;
}

export interface PreparationStatus {
  reference: string;
  phase: PreparationPhase;
  lessonId?: string;
  halted: PreparationHalt | null;
  subjects: SubjectProgress[];
  stats?: LessonStats;
  /** The child rollout, once started, and how it ended. */
  rollout?: { workflowId: string; phase?: RolloutStatus['phase'] };
  /** One line for people: what this run did. */
  summary: string;
}

export const PREPARATION_SIGNALS = { resume: 'resume', abort: 'abort' } as const;
