/**
 * The examination: before users can reach the new lesson on this satellite, check it
 * through the satellite's real web server on its private examination port:
 * 1. every file still matches the manifest (a file damaged after the copy is caught);
 * 2. the reference's test queries get the same answers (sha256 of the body);
 * 3. the test suite passes against the examination URL: the configured command, or the
 *    built-in browser test that searches the lesson's probe word on its search page.
 * A satellite with its own services is examined on them instead (examineOnOwnServices).
 */
import { createHash } from 'node:crypto';
import type { UserCommand } from '../../config/schema';
import { readManifest, verifyAgainstManifest } from '../../lesson/manifest';
import type { FiledLesson } from '../../shared/lesson';
import type { ExaminationResult } from '../../shared/rollout';
import { runTestSuite } from '../../lesson/testSuite';
import { startApache, stopApache, type ApacheSatellite } from './apache';
import { runUserCommand, UserCommandFailed } from '../common/userCommand';
import { ServiceError, startServices, stopServices, type OwnSatellite } from './ownServices';
import { lessonDir, linkedLesson, pointLink } from './lessons';

export async function examine(
  satellite: ApacheSatellite,
  lesson: FiledLesson,
  options: { testCommand?: string[]; chromium?: string; signal?: AbortSignal; onCheck?: (done: number) => void },
): Promise<ExaminationResult> {
  const { failures, count, result } = tally(options.onCheck);
  count(await checkCopy(lessonDir(satellite, lesson.lessonId), lesson));

  pointLink(satellite, 'exam', lesson.lessonId);
  await startApache(satellite, 'exam');
  try {
    const base = `http://127.0.0.1:${satellite.webServer.examPort}`;
    for (const query of lesson.testQueries) count(await askQuery(base, query, options.signal));
    // The test suite: the configured command, or the browser test when the lesson names a probe.
    if (options.testCommand || (options.chromium && lesson.searchProbe)) {
      count(
        await runTestSuite({
          reference: { testCommand: options.testCommand, chromium: options.chromium ?? '' },
          baseUrl: `${base}/`,
          lessonId: lesson.lessonId,
          probe: lesson.searchProbe,
          signal: options.signal,
        }),
      );
    }
  } finally {
    await stopApache(satellite, 'exam');
  }
  return result();
}

/**
 * The examination on the satellite's own services. With an examination instance
 * (webServer.examination), beside the lesson users are served: `exam` points at the new
 * lesson, the examination instance starts on it, answers the checks on its private port,
 * and stops again. Without one, while the satellite is out of the load balancer: `current`
 * points at the new lesson and the services users reach restart on it; passed, they keep
 * running on it (leaving the classroom finds them so); failed, they are stopped and
 * `current` points back at the lesson before. Either way the reference's queries are
 * asked, and the cluster's own test commands (the subjects' proof-read commands) run here
 * with LESSON_URL, LESSON_DIR (this satellite's copy) and LESSON_ID.
 */
export async function examineOnOwnServices(
  satellite: OwnSatellite,
  lesson: FiledLesson,
  options: { testCommands: { field: string; command: UserCommand }[]; signal?: AbortSignal; onCheck?: (done: number) => void },
): Promise<ExaminationResult> {
  const { failures, count, result } = tally(options.onCheck);
  const dir = lessonDir(satellite, lesson.lessonId);
  count(await checkCopy(dir, lesson));
  if (failures.length > 0) return result();

  const examination = satellite.webServer.examination;
  const instance = examination ? 'exam' : 'serve';
  const port = examination ? examination.port : satellite.webServer.port;
  const link = examination ? 'exam' : 'current';
  const before = linkedLesson(satellite, link);
  pointLink(satellite, link, lesson.lessonId);
  try {
    await startServices(satellite, options.signal, instance);
    const base = `http://127.0.0.1:${port}`;
    for (const query of lesson.testQueries) count(await askQuery(base, query, options.signal));
    const env = { LESSON_URL: `${base}/`, LESSON_DIR: dir, LESSON_ID: lesson.lessonId, SATELLITE: satellite.name };
    for (const { field, command } of options.testCommands) {
      try {
        await runUserCommand(command, { field, env, signal: options.signal });
        count([]);
      } catch (err) {
        if (!(err instanceof UserCommandFailed)) throw err;
        count([err.message]);
      }
    }
  } catch (err) {
    if (!(err instanceof ServiceError || err instanceof UserCommandFailed)) throw err;
    count([err.message]);
  }
  if (examination) {
    // Like lessonplan's Apache on its examPort: the examination instance runs only while it examines (or stands in).
    await stopServices(satellite, undefined, 'exam');
  } else if (failures.length > 0) {
    // Never left on a lesson that failed: stopped, and pointed back.
    await stopServices(satellite);
    if (before && before !== lesson.lessonId) pointLink(satellite, 'current', before);
  }
  return result();
}

/** The checks of an examination as they are counted: each adds its failures (none: it passed). */
function tally(onCheck?: (done: number) => void) {
  const failures: string[] = [];
  let checks = 0;
  return {
    failures,
    count(found: string[]) {
      checks += 1;
      failures.push(...found);
      onCheck?.(checks);
    },
    result: (): ExaminationResult => ({ passed: failures.length === 0, checks, failures }),
  };
}

/** Every file of the copy matches the manifest (a file damaged after the copy is caught). */
async function checkCopy(dir: string, lesson: FiledLesson): Promise<string[]> {
  try {
    const manifest = await readManifest(dir, lesson.manifestSha256);
    return (await verifyAgainstManifest(dir, manifest)).map((p) => `file ${p}`);
  } catch (err) {
    return [`the copy cannot be checked: ${(err as Error).message}`];
  }
}

/** One of the reference's queries: the same answer (sha256 of the body), or why not. */
export async function askQuery(base: string, query: FiledLesson['testQueries'][number], signal?: AbortSignal): Promise<string[]> {
  try {
    const response = await fetch(`${base}${query.path}`, { signal });
    const body = Buffer.from(await response.arrayBuffer());
    const sha = createHash('sha256').update(body).digest('hex');
    if (response.status !== 200) return [`query ${query.name} (${query.path}): HTTP ${response.status}`];
    if (sha !== query.expectedSha256) return [`query ${query.name} (${query.path}): answer differs from the reference's`];
    return [];
  } catch (err) {
    return [`query ${query.name} (${query.path}): ${(err as Error).message}`];
  }
}
