/**
 * The test suite of a lesson, run by the reference (proof-reading) and by every
 * satellite (examination) against the lesson's URL: the configured command, with the
 * lesson in its environment, or the built-in browser test.
 */
import { execa } from 'execa';
import type { SearchProbe } from '../shared/lesson';
import { runSearchPageTest } from './browserTest';

/** The configured test command, or the built-in browser test; returns failures. */
export async function runTestSuite(options: {
  reference: { testCommand?: string[]; chromium: string };
  baseUrl: string;
  lessonId: string;
  dir?: string;
  probe?: SearchProbe;
  signal?: AbortSignal;
}): Promise<string[]> {
  const { testCommand, chromium } = options.reference;
  if (testCommand) {
    const [file, ...args] = testCommand;
    const result = await execa(file!, args, {
      reject: false,
      all: true,
      stdin: 'ignore',
      cancelSignal: options.signal,
      timeout: 10 * 60_000,
      env: {
        LESSON_URL: options.baseUrl,
        LESSON_ID: options.lessonId,
        ...(options.dir ? { LESSON_DIR: options.dir } : {}),
        ...(options.probe ? { PROBE_TERM: options.probe.term, PROBE_TITLE: options.probe.title } : {}),
      },
    });
    if (result.exitCode === 0) return [];
    const tail = String(result.all ?? '')
      .trim()
      .split('\n')
      .slice(-5)
      .join(' | ');
    return [`test command ${testCommand.join(' ')} exited ${result.exitCode ?? (result.timedOut ? '(timed out)' : '(killed)')}: ${tail}`];
  }
  // Nothing new to search for (e.g. only unchanged answers): the page must still load.
  return runSearchPageTest({ baseUrl: options.baseUrl, probe: options.probe, chromiumPath: chromium });
}
