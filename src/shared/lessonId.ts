/** Lesson ids: the time a lesson was made, and a suffix that makes it unique. */

/**
 * A lesson id that sorts by time and is unique per run: 20261122-031500-3f2a9c. The
 * suffix is the end of the run id (run ids are UUIDv7, whose start is a timestamp).
 */
export function lessonIdFor(at: Date, runId: string): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${runId.replace(/-/g, '').slice(-6).toLowerCase()}`;
}
