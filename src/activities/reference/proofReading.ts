/**
 * Proof-reading: before anything leaves the reference machine, the new lesson is
 * served by the reference's own private Apache (the same web server the satellites
 * run) and checked the way users would see it:
 *
 * - the new subject matter is there: each new item's file equals its database row,
 *   and a search for a word of its title finds it;
 * - old answers are still right: a sample of unchanged rows;
 * - the test suite passes: the configured command, or the built-in browser test.
 *
 * The answers it got become the lesson's test queries, which every satellite must
 * reproduce in its examination.
 */
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import type { ClusterConfig } from '../../config/schema';
import { runTestSuite } from '../../lesson/testSuite';
import { itemBody, itemFile, SEARCH_PAGE, termFile, urlPath, VERSION_FILE, versionBody } from '../../lesson/layout';
import { sha256 } from '../../lesson/manifest';
import type { SearchProbe, TestQuery } from '../../shared/lesson';
import type { ProofReadResult } from '../../shared/preparation';
import { WORD_PATTERN, type ItemAnswer, type SearchAnswer } from '../../shared/subjectMatter';
import { freeStablePort } from '../../stack/ports';
import { startApache, stopApache, type ApacheHost } from '../satellite/apache';
import type { catalogOf } from './catalog';

type ReferenceConfig = ClusterConfig['reference'];

/** The reference's proof-reading web server: Apache on a private port, serving one lesson folder. */
export function proofReadingHost(reference: ReferenceConfig, port: number): ApacheHost {
  return {
    name: `${reference.name}-proof-reading`,
    dataDir: path.join(path.dirname(reference.lessonsDir), 'proof-reading'),
    webServer: { port, examPort: port },
    readableRoots: [reference.lessonsDir, ...(reference.servedDir ? [reference.servedDir] : [])],
  };
}

/** The word of a title that a search should find it by: its longest word the index holds. */
export function probeWord(titleTerms: string[]): string | undefined {
  return titleTerms.filter((w) => WORD_PATTERN.test(w)).sort((a, b) => b.length - a.length || a.localeCompare(b))[0];
}

export async function proofRead(options: {
  reference: ReferenceConfig;
  lessonId: string;
  subject: string;
  catalog: ReturnType<typeof catalogOf>;
  signal?: AbortSignal;
  onCheck?: (checks: number) => void;
}): Promise<ProofReadResult> {
  const { reference, lessonId, subject, catalog } = options;
  const dir = path.join(reference.lessonsDir, lessonId);
  if (!existsSync(dir)) {
    return {
      passed: false,
      checks: 1,
      failures: [`the lesson folder ${dir} does not exist (removed by hand?); abort this run, and the next run prepares the changes again`],
      testQueries: [],
    };
  }
  // Below the ephemeral range: Apache binds it a moment later, and an ephemeral port
  // could meanwhile become the local end of some outgoing connection.
  const port = reference.proofReadPort || (await freeStablePort());
  const host = proofReadingHost(reference, port);
  // A server left by an earlier attempt (maybe on another port) goes first.
  await stopApache(host, 'exam');
  pointAt(host, dir);
  await startApache(host, 'exam');

  const base = `http://127.0.0.1:${port}`;
  const failures: string[] = [];
  const testQueries: TestQuery[] = [];
  let checks = 0;
  const get = async (file: string): Promise<{ status: number; body: string }> => {
    const response = await fetch(`${base}${urlPath(file)}`, { signal: options.signal });
    return { status: response.status, body: await response.text() };
  };
  /** Asks for a file, checks the answer, and keeps it as a test query when asked to. */
  const check = async (file: string, what: string, expect: (body: string) => string | undefined, keep: boolean) => {
    checks += 1;
    try {
      const { status, body } = await get(file);
      const problem = status !== 200 ? `HTTP ${status}` : expect(body);
      if (problem) failures.push(`${what} (${urlPath(file)}): ${problem}`);
      else if (keep) testQueries.push({ name: `${subject}: ${what}`, path: urlPath(file), expectedSha256: sha256(body) });
    } catch (err) {
      failures.push(`${what} (${urlPath(file)}): ${(err as Error).message}`);
    }
    options.onCheck?.(checks);
  };
  const sameAs = (expected: string) => (body: string) => (body === expected ? undefined : 'the file differs from the database row');
  const findsItem = (item: ItemAnswer) => (body: string) => {
    const answer = JSON.parse(body) as SearchAnswer;
    return answer.hits.some((h) => h.subject === item.subject && h.id === item.id)
      ? undefined
      : `${item.subject}/${item.id} is not among ${answer.hits.length} hits`;
  };

  let probe: SearchProbe | undefined;
  try {
    await check(VERSION_FILE, 'version', sameAs(versionBody(lessonId)), true);
    await check(SEARCH_PAGE, 'search page', (body) => (body.includes('id="q"') ? undefined : 'not the search page'), true);

    const fresh = await catalog.sample(subject, 'pending', 20);
    for (const [i, item] of fresh.entries()) {
      await check(itemFile(item.subject, item.id), `new ${item.kind} ${item.id}`, sameAs(itemBody(answerOf(item))), i < 10);
      const word = probeWord(item.titleTerms);
      if (!word) continue;
      await check(termFile(word), `search "${word}" finds ${item.id}`, findsItem(item), i < 5);
      probe ??= { term: word, title: item.title };
    }
    const unchanged = await catalog.sample(subject, 'unchanged', 20);
    for (const [i, item] of unchanged.entries()) {
      await check(itemFile(item.subject, item.id), `unchanged ${item.kind} ${item.id}`, sameAs(itemBody(answerOf(item))), i < 5);
    }

    checks += 1;
    failures.push(...(await runTestSuite({ reference, baseUrl: `${base}/`, lessonId, dir, probe, signal: options.signal })));
    options.onCheck?.(checks);
  } finally {
    await stopApache(host, 'exam');
  }
  return { passed: failures.length === 0, checks, failures, testQueries, ...(probe ? { searchProbe: probe } : {}) };
}

/** The item as the lesson serves it (without what the proof-reading added). */
function answerOf(item: ItemAnswer & { titleTerms?: string[] }): ItemAnswer {
  const { titleTerms, ...answer } = item;
  void titleTerms;
  return answer;
}

/** Points the proof-reading server's document root at a folder (a lesson, or servedDir). */
export function pointAt(host: ApacheHost, lessonDir: string): void {
  mkdirSync(host.dataDir, { recursive: true });
  const link = path.join(host.dataDir, 'exam');
  const temp = `${link}.${process.pid}.new`;
  rmSync(temp, { force: true });
  symlinkSync(lessonDir, temp);
  renameSync(temp, link);
}
