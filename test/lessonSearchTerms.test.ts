/**
 * Issue 13: a search term of 64 four-byte letters (CJK extension B, U+20000...) is a word
 * the index holds (64 letters at most), but `search/<term>.json` would be 261 bytes, more
 * than a file name may be (255). Against the real PostgreSQL and a real file system: the
 * lesson is written, every file name stays short, and the search page, served over
 * HTTP to a real browser, still finds the term.
 */
import assert from 'node:assert/strict';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import { catalogOf, validateItem, type CatalogRow } from '../src/activities/reference/catalog';
import { writeLessonFolder } from '../src/activities/reference/lessonFiles';
import { runSearchPageTest } from '../src/lesson/browserTest';
import { termFile } from '../src/lesson/layout';
import { lessonFiles } from '../src/lesson/manifest';
import { migrateReference } from '../src/db/migrate';
import { WORD_PATTERN } from '../src/shared/subjectMatter';
import { freshDatabase, onTeardown, testStack } from './helpers/stack';

const CHROMIUM = '/usr/bin/chromium';
/** 64 distinct letters of CJK Unified Ideographs Extension B, four bytes each in UTF-8. */
const LONG_TERM = String.fromCodePoint(...Array.from({ length: 64 }, (_, i) => 0x20000 + i));
/** 63 of them and "x": also past the limit, and it shares its first 32 letters with LONG_TERM. */
const SIBLING_TERM = `${String.fromCodePoint(...Array.from({ length: 63 }, (_, i) => 0x20000 + i))}x`;

const document = (inboxId: number, id: string, title: string, body: string): CatalogRow => {
  const checked = validateItem('documents', { inboxId, kind: 'document', externalId: id, payload: { title, body } });
  assert.ok('row' in checked, JSON.stringify(checked));
  return checked.row;
};

/** A plain static file server over the lesson folder, as Apache serves it to the page. */
async function serve(dir: string): Promise<string> {
  const server: Server = createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.join(dir, rel);
    if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': rel.endsWith('.html') ? 'text/html; charset=utf-8' : 'application/json' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTeardown(() => new Promise((resolve) => server.close(resolve)));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return `http://127.0.0.1:${address.port}/`;
}

describe('search terms of four-byte letters', async () => {
  const base = await testStack();
  const { db: ref } = await freshDatabase(base, 'long_terms');
  await migrateReference(ref);
  const catalog = catalogOf(ref);
  const lessonsDir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-long-terms-'));
  onTeardown(() => rmSync(lessonsDir, { recursive: true, force: true }));
  beforeEach(() => ref.query('TRUNCATE catalog, pending_items, pending_terms'));

  test('the term is a word of the index, too long as a plain file name', async () => {
    assert.ok(WORD_PATTERN.test(LONG_TERM));
    assert.equal(Buffer.byteLength(`${LONG_TERM}.json`), 261);
    await catalog.upsert([document(1, 'ext-b', `Glyphs ${LONG_TERM}`, 'A table of rare characters.')]);
    assert.ok((await catalog.pendingTerms('', 100)).includes(LONG_TERM), 'PostgreSQL holds the term as one lexeme');
  });

  test('a lesson with such terms is written, its file names fit, and the search page finds them', async () => {
    await catalog.upsert([
      document(1, 'ext-b', `Glyphs ${LONG_TERM}`, 'A table of rare characters.'),
      document(2, 'ext-b-sibling', `Almost the same ${SIBLING_TERM}`, 'Another table.'),
      document(3, 'plain', 'Walruses', 'Walruses haul out on ice.'),
    ]);
    const written = await writeLessonFolder({ lessonsDir, lessonId: 'lesson-long', previous: null, catalog });
    assert.ok(written.filesWritten > 0);

    // No name in the folder is longer than a file system takes.
    for (const rel of await lessonFiles(written.dir)) {
      for (const part of rel.split('/')) assert.ok(Buffer.byteLength(part) <= 255, `${rel}: a name of ${Buffer.byteLength(part)} bytes`);
    }
    // Short terms keep the layout existing lessons have (their files are hard-linked into the next lesson).
    assert.equal(termFile('walruses'), 'search/walruses.json');
    assert.ok(existsSync(path.join(written.dir, 'search/walruses.json')));
    assert.notEqual(termFile(LONG_TERM), termFile(SIBLING_TERM));
    for (const [term, id] of [
      [LONG_TERM, 'ext-b'],
      [SIBLING_TERM, 'ext-b-sibling'],
    ] as const) {
      const answer = JSON.parse(readFileSync(path.join(written.dir, termFile(term)), 'utf8'));
      assert.equal(answer.term, term);
      assert.deepEqual(
        answer.hits.map((h: { id: string }) => h.id),
        [id],
      );
    }

    // The page a user gets: typed into the search box, the term finds its document.
    const url = await serve(written.dir);
    for (const probe of [
      { term: LONG_TERM, title: `Glyphs ${LONG_TERM}` },
      { term: SIBLING_TERM.toUpperCase(), title: `Almost the same ${SIBLING_TERM}` },
      { term: 'Walruses', title: 'Walruses' },
    ]) {
      assert.deepEqual(await runSearchPageTest({ baseUrl: url, probe, chromiumPath: CHROMIUM }), [], `searching ${probe.term}`);
    }
  });
});
