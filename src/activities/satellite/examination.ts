/**
 * The examination: before users can reach the new lesson on this satellite, check it
 * through the satellite's real web server on its private examination port:
 * 1. every file still matches the manifest (a file damaged after the copy is caught);
 * 2. the reference's test queries get the same answers (sha256 of the body);
 * 3. the test suite passes against the examination URL: the configured command, or the
 *    built-in browser test that searches the lesson's probe word on its search page.
 */
import { createHash } from 'node:crypto';
import type { SatelliteConfig } from '../../config/schema';
import { readManifest, verifyAgainstManifest } from '../../lesson/manifest';
import type { FiledLesson } from '../../shared/lesson';
import type { ExaminationResult } from '../../shared/rollout';
import { runTestSuite } from '../../lesson/testSuite';
import { startApache, stopApache } from './apache';
import { lessonDir, pointLink } from './lessons';

export async function examine(
  satellite: SatelliteConfig,
  lesson: FiledLesson,
  options: { testCommand?: string[]; chromium?: string; signal?: AbortSignal; onCheck?: (done: number) => void },
): Promise<ExaminationResult> {
  const failures: string[] = [];
  let checks = 0;
  const dir = lessonDir(satellite, lesson.lessonId);

  try {
    const manifest = await readManifest(dir, lesson.manifestSha256);
    const problems = await verifyAgainstManifest(dir, manifest);
    failures.push(...problems.map((p) => `file ${p}`));
  } catch (err) {
    failures.push(`the copy cannot be checked: ${(err as Error).message}`);
  }
  checks += 1;
  options.onCheck?.(checks);

  pointLink(satellite, 'exam', lesson.lessonId);
  await startApache(satellite, 'exam');
  try {
    const base = `http://127.0.0.1:${satellite.webServer.examPort}`;
    for (const query of lesson.testQueries) {
      checks += 1;
      try {
        const response = await fetch(`${base}${query.path}`, { signal: options.signal });
        const body = Buffer.from(await response.arrayBuffer());
        const sha = createHash('sha256').update(body).digest('hex');
        if (response.status !== 200) failures.push(`query ${query.name} (${query.path}): HTTP ${response.status}`);
        else if (sha !== query.expectedSha256) failures.push(`query ${query.name} (${query.path}): answer differs from the reference's`);
      } catch (err) {
        failures.push(`query ${query.name} (${query.path}): ${(err as Error).message}`);
      }
      options.onCheck?.(checks);
    }
    // The test suite: the configured command, or the browser test when the lesson names a probe.
    if (options.testCommand || (options.chromium && lesson.searchProbe)) {
      checks += 1;
      failures.push(
        ...(await runTestSuite({
          reference: { testCommand: options.testCommand, chromium: options.chromium ?? '' },
          baseUrl: `${base}/`,
          lessonId: lesson.lessonId,
          probe: lesson.searchProbe,
          signal: options.signal,
        })),
      );
      options.onCheck?.(checks);
    }
  } finally {
    await stopApache(satellite, 'exam');
  }
  return { passed: failures.length === 0, checks, failures };
}
