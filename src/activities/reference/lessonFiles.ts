/**
 * Writing a lesson folder: a hard-linked copy of the previous filed lesson, then only
 * the files whose answer changed are replaced (never written through a link, which
 * would change the previous lesson too). A file whose new answer equals the old one
 * keeps its link, so rsync sees it unchanged.
 *
 * Built in `<lessonId>.building` and renamed into place at the end: a retried step
 * starts again from the previous lesson and every pending change, so it gives the same
 * folder however often it runs.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { itemBody, itemFile, SEARCH_PAGE, searchBody, termFile, VERSION_FILE, versionBody } from '../../lesson/layout';
import { SEARCH_PAGE_HTML } from '../../lesson/searchPage';
import { LESSON_META_DIR } from '../../shared/lesson';
import { WORD_PATTERN } from '../../shared/subjectMatter';
import type { catalogOf } from './catalog';

export interface WrittenLesson {
  dir: string;
  previous: string | null;
  filesWritten: number;
  filesRemoved: number;
}

const BATCH = 500;

export async function writeLessonFolder(options: {
  lessonsDir: string;
  lessonId: string;
  previous: string | null;
  catalog: ReturnType<typeof catalogOf>;
  /** Checked between batches: a cancelled attempt stops before it touches the folder again. */
  signal?: AbortSignal;
  onProgress?: (done: { filesWritten: number; filesRemoved: number }) => void;
}): Promise<WrittenLesson> {
  const { lessonsDir, lessonId, previous, catalog } = options;
  const dir = path.join(lessonsDir, lessonId);
  const building = `${dir}.building`;
  mkdirSync(lessonsDir, { recursive: true });
  rmSync(building, { recursive: true, force: true });
  const previousDir = previous ? path.join(lessonsDir, previous) : undefined;
  if (previousDir && existsSync(previousDir)) {
    await execa('cp', ['-al', '--', previousDir, building]);
    // The previous lesson's manifest and stats describe that lesson, not this one.
    rmSync(path.join(building, LESSON_META_DIR), { recursive: true, force: true });
  } else {
    mkdirSync(building, { recursive: true });
  }

  const counts = { filesWritten: 0, filesRemoved: 0 };
  const report = () => options.onProgress?.({ ...counts });
  const put = (rel: string, body: string | null) => {
    const file = path.join(building, rel);
    const exists = existsSync(file);
    if (body === null) {
      if (exists) {
        rmSync(file);
        counts.filesRemoved += 1;
      }
      return;
    }
    if (exists && readFileSync(file).equals(Buffer.from(body))) return;
    mkdirSync(path.dirname(file), { recursive: true });
    rmSync(file, { force: true });
    writeFileSync(file, body);
    counts.filesWritten += 1;
  };

  put(VERSION_FILE, versionBody(lessonId));
  put(SEARCH_PAGE, SEARCH_PAGE_HTML);

  for (let after: [string, string] = ['', '']; ;) {
    options.signal?.throwIfAborted();
    const items = await catalog.pendingItems(after, BATCH);
    if (items.length === 0) break;
    for (const item of items) put(itemFile(item.subject, item.externalId), item.answer ? itemBody(item.answer) : null);
    const last = items.at(-1)!;
    after = [last.subject, last.externalId];
    report();
  }

  for (let after = ''; ;) {
    options.signal?.throwIfAborted();
    const terms = await catalog.pendingTerms(after, BATCH);
    if (terms.length === 0) break;
    // Lexemes that are not plain words (e.g. "3.5") are never looked up by the search page.
    const words = terms.filter((t) => WORD_PATTERN.test(t));
    const hits = await catalog.hits(words);
    for (const term of words) {
      const found = hits.get(term)!;
      put(termFile(term), found.length > 0 ? searchBody({ term, hits: found }) : null);
    }
    after = terms.at(-1)!;
    report();
  }

  options.signal?.throwIfAborted();
  rmSync(dir, { recursive: true, force: true });
  renameSync(building, dir);
  return { dir, previous: previousDir && existsSync(previousDir) ? previous : null, ...counts };
}
