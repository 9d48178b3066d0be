/**
 * Filed lessons for the rollout tests, laid out as the reference machine files them:
 * a version file, one JSON answer per search term, a search page, and the manifest.
 * A new lesson starts as hard links to the previous one, then changes a few files, so
 * unchanged files share their inode and mtime as the reference's do.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildManifest, sha256 } from '../../src/lesson/manifest';
import { MANIFEST_FILE, type FiledLesson } from '../../src/shared/lesson';
import { classifyByAnswers, startLoad, type RunningLoad } from '../../src/cluster/loadGenerator';

export interface TestLesson {
  filed: FiledLesson;
  dir: string;
  /** Expected body per URL path. */
  answers: Map<string, string>;
}

const TERMS = Array.from({ length: 40 }, (_, i) => `term${i}`);

function writeAnswer(dir: string, rel: string, body: string) {
  const file = path.join(dir, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  rmSync(file, { force: true }); // never write through a hard link into the previous lesson
  writeFileSync(file, body);
}

/** Builds lesson `lessonId` under `lessonsDir`; `changed` terms get new answers compared to `previous`. */
export async function fileTestLesson(
  lessonsDir: string,
  lessonId: string,
  previous?: TestLesson,
  changed: string[] = TERMS.slice(0, 5),
  options: { bigFileBytes?: number } = {},
): Promise<TestLesson> {
  const dir = path.join(lessonsDir, lessonId);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(lessonsDir, { recursive: true });
  if (previous) execFileSync('cp', ['-al', previous.dir, dir]);
  else mkdirSync(dir, { recursive: true });
  const answers = new Map(previous?.answers ?? []);
  const set = (rel: string, body: string) => {
    writeAnswer(dir, rel, body);
    answers.set(`/${rel}`, body);
  };
  set('version', `${lessonId}\n`);
  if (!previous) {
    set('index.html', '<!doctype html><title>search</title><form action="/search/"><input name="q"></form>\n');
    for (const term of TERMS) set(`search/${term}.json`, `${JSON.stringify({ term, results: [`doc-${term}-a`, `doc-${term}-b`] })}\n`);
    // A larger file that stays the same, so that hard links show in rsync's figures.
    set('records/bulk.json', `${JSON.stringify(Array.from({ length: 20_000 }, (_, i) => ({ id: i, title: `record ${i}` })))}\n`);
  } else {
    for (const term of changed) set(`search/${term}.json`, `${JSON.stringify({ term, results: [`doc-${term}-a`, `doc-${term}-${lessonId}`] })}\n`);
  }
  // Incompressible bytes, for copies that must take a while.
  if (options.bigFileBytes) writeAnswer(dir, 'records/big.bin', randomBytes(options.bigFileBytes).toString('base64'));
  const manifest = await buildManifest(dir, lessonId);
  mkdirSync(path.join(dir, '.lesson'), { recursive: true });
  writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  const testPaths = ['/version', ...changed.map((t) => `/search/${t}.json`), '/search/term39.json'];
  return {
    dir,
    answers,
    filed: {
      lessonId,
      source: dir,
      manifestSha256: sha256(readFileSync(path.join(dir, MANIFEST_FILE))),
      fileCount: manifest.files.length,
      totalBytes: manifest.files.reduce((n, f) => n + f.size, 0),
      testQueries: testPaths.map((p) => ({ name: p.replace(/^\//, ''), path: p, expectedSha256: sha256(answers.get(p)!) })),
    },
  };
}

/** Users asking HAProxy for the old lesson's pages until stopped, each answer classified as old, new, either or neither. */
export function loadBetween(frontend: string, old: TestLesson, next: TestLesson): RunningLoad {
  return startLoad({
    baseUrl: frontend,
    // The bulk file is large and never changes: it would only slow the load down.
    paths: [...old.answers.keys()].filter((p) => p !== '/records/bulk.json'),
    concurrency: 4,
    maxRequests: 200_000,
    maxDurationMs: 180_000,
    classify: classifyByAnswers(old.answers, next.answers),
  });
}
