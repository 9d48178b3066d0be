/**
 * The examination: before users can reach the new lesson on this satellite, check it
 * through the satellite's real web server on its private examination port:
 * 1. every file still matches the manifest (a file damaged after the copy is caught);
 * 2. the reference's test queries get the same answers (sha256 of the body);
 * 3. the configured test command passes against the examination URL.
 */
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import type { SatelliteConfig } from '../../config/schema';
import { readManifest, verifyAgainstManifest } from '../../lesson/manifest';
import type { FiledLesson } from '../../shared/lesson';
import type { ExaminationResult } from '../../shared/rollout';
import { startApache, stopApache } from './apache';
import { lessonDir, pointLink } from './lessons';

export async function examine(
  satellite: SatelliteConfig,
  lesson: FiledLesson,
  options: { testCommand?: string[]; signal?: AbortSignal; onCheck?: (done: number) => void },
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
    if (options.testCommand) {
      checks += 1;
      const [file, ...args] = options.testCommand;
      const result = await execa(file!, args, {
        reject: false,
        all: true,
        cancelSignal: options.signal,
        env: { LESSON_URL: `${base}/`, LESSON_ID: lesson.lessonId },
        timeout: 10 * 60_000,
      });
      if (result.exitCode !== 0)
        failures.push(
          `test command ${options.testCommand.join(' ')} exited ${result.exitCode}: ${String(result.all).trim().split('\n').slice(-5).join(' | ')}`,
        );
    }
  } finally {
    await stopApache(satellite, 'exam');
  }
  return { passed: failures.length === 0, checks, failures };
}
