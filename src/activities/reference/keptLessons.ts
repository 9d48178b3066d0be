/**
 * The lessons the reference still keeps a record of, for a rollback: a lesson filed
 * earlier, with the description the rollout needs (its manifest's sha256 and the
 * reference's test queries with their answers).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Database } from '../../db/database';
import type { FiledLesson } from '../../shared/lesson';

/**
 * The filed lesson `lessonId`, or, without one, the lesson filed last before `current`
 * (the one the cluster served before). Refused, non-retryably and with the reason, when
 * the reference has no such record: nothing to roll back to.
 */
export async function findKeptLesson(db: Database, request: { lessonId?: string; current?: string }): Promise<FiledLesson> {
  const refuse = (message: string) => ApplicationFailure.nonRetryable(message, 'LessonNotKept');
  let row: { lesson_id: string; filed: FiledLesson | null } | undefined;
  if (request.lessonId) {
    ({
      rows: [row],
    } = await db.query<{ lesson_id: string; filed: FiledLesson | null }>('SELECT lesson_id, filed FROM lessons WHERE lesson_id = $1', [
      request.lessonId,
    ]));
    if (!row) throw refuse(`the reference keeps no lesson ${request.lessonId} (pruned, or never filed): lessonplan lesson list shows the lessons`);
  } else {
    if (!request.current) throw refuse('no satellite serves a lesson: there is nothing to roll back from');
    const { rows: current } = await db.query('SELECT 1 FROM lessons WHERE lesson_id = $1', [request.current]);
    if (current.length === 0)
      throw refuse(`the reference keeps no record of lesson ${request.current}, which the satellites serve: name the lesson to go back to with --to`);
    ({
      rows: [row],
    } = await db.query<{ lesson_id: string; filed: FiledLesson | null }>(
      `SELECT lesson_id, filed FROM lessons
        WHERE (filed_at, lesson_id) < (SELECT filed_at, lesson_id FROM lessons WHERE lesson_id = $1)
        ORDER BY filed_at DESC, lesson_id DESC LIMIT 1`,
      [request.current],
    ));
    if (!row) throw refuse(`lesson ${request.current} is the oldest lesson the reference keeps: there is no earlier one to roll back to`);
  }
  if (!row.filed)
    throw refuse(`lesson ${row.lesson_id} was filed before lessonplan recorded lessons for rollback: roll back to a lesson filed since`);
  return row.filed;
}
