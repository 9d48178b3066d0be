/**
 * Issue 13: a document body the inbox accepts (up to 1,000,000 characters) can hold more
 * distinct words than PostgreSQL's tsvector takes (1 MB). Against the real PostgreSQL:
 * such an item is refused with the reason, and the rest of its batch goes in.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { catalogOf, UnstorableRows, validateItem, type CatalogRow } from '../src/activities/reference/catalog';
import { dropIntoInbox } from '../src/activities/reference/inbox';
import { createPreparationActivities } from '../src/activities/reference/preparation';
import { migrateOperational, migrateReference } from '../src/db/migrate';
import type { InboxItem } from '../src/shared/subjectMatter';
import { freshDatabase, testStack } from './helpers/stack';

/** The n-th of a run of distinct seven-letter words: "w" and six letters counting in base 26 (none is a stop word). */
function word(n: number): string {
  let letters = '';
  for (let i = 0; i < 6; i++, n = Math.floor(n / 26)) letters = String.fromCharCode(97 + (n % 26)) + letters;
  return `w${letters}`;
}

/** A body as long as the inbox allows (1,000,000 characters at most), every word a different one. */
const MANY_DISTINCT_WORDS = Array.from({ length: 125_000 }, (_, n) => word(n)).join(' ');
/** As long, but 500 words over and over. */
const FEW_WORDS_REPEATED = Array.from({ length: 125_000 }, (_, n) => word(n % 500)).join(' ');

const doc = (id: string, title: string, body: string): InboxItem => ({
  subject: 'documents',
  kind: 'document',
  externalId: id,
  payload: { title, body },
});
const batch = [
  doc('before-1', 'Otters before the big one', 'Otters float on their backs.'),
  doc('too-many-words', 'A dictionary of invented words', MANY_DISTINCT_WORDS),
  doc('after-1', 'Herons after the big one', 'Herons stand still for hours.'),
];
/** The items as the catalog gets them from the inbox (validated, with inbox ids). */
const rowsOf = (items: InboxItem[]): CatalogRow[] =>
  items.map((item, i) => {
    const checked = validateItem(item.subject, { inboxId: i + 1, kind: item.kind, externalId: item.externalId, payload: item.payload });
    assert.ok('row' in checked, `${item.externalId} passes validation: ${JSON.stringify(checked)}`);
    return checked.row;
  });

describe('a document whose words do not fit the search index', async () => {
  const base = await testStack();
  const { db: ops } = await freshDatabase(base, 'tsv_ops');
  await migrateOperational(ops);
  const { db: ref, url: refUrl } = await freshDatabase(base, 'tsv_ref');
  await migrateReference(ref);
  const catalog = catalogOf(ref);
  const ids = async (table: 'catalog' | 'pending_items') =>
    (await ref.query<{ external_id: string }>(`SELECT external_id FROM ${table} ORDER BY external_id`)).rows.map((r) => r.external_id);
  beforeEach(async () => {
    await ops.query('DELETE FROM inbox');
    await ref.query('TRUNCATE catalog, pending_items, pending_terms');
  });

  test('is passed by validation: the inbox takes bodies of up to 1,000,000 characters', () => {
    assert.ok(MANY_DISTINCT_WORDS.length <= 1_000_000 && MANY_DISTINCT_WORDS.length > 990_000, `${MANY_DISTINCT_WORDS.length} characters`);
    rowsOf(batch);
  });

  test('is refused with the reason (refuse: true); the other rows of its batch are stored and pending', async () => {
    const { refused } = await catalog.upsert(rowsOf(batch), { refuse: true });
    assert.deepEqual(
      refused.map((r) => [r.inboxId, r.externalId]),
      [[2, 'too-many-words']],
    );
    assert.match(refused[0]!.reason, /string is too long for tsvector \(\d+ bytes, max 1048575 bytes\)/);
    assert.match(refused[0]!.reason, /split it into smaller documents/);
    assert.deepEqual(await ids('catalog'), ['after-1', 'before-1']);
    assert.deepEqual(await ids('pending_items'), ['after-1', 'before-1']);
    const { rows } = await ref.query<{ n: string }>("SELECT count(*) AS n FROM pending_terms WHERE term IN ('otters', 'herons')");
    assert.equal(Number(rows[0]!.n), 2);
  });

  test('without refuse, nothing of the batch goes in and the error names the item', async () => {
    await assert.rejects(catalog.upsert(rowsOf(batch)), (err: unknown) => {
      assert.ok(err instanceof UnstorableRows, String(err));
      assert.deepEqual(
        err.refused.map((r) => r.externalId),
        ['too-many-words'],
      );
      assert.match(err.message, /item 2 \(too-many-words\): this document has more distinct words than the search index holds/);
      return true;
    });
    assert.deepEqual(await ids('catalog'), []);
    assert.deepEqual(await ids('pending_items'), []);
  });

  test('a body as long, of few words repeated, fits and is stored', async () => {
    assert.ok(FEW_WORDS_REPEATED.length > 990_000);
    const { refused } = await catalog.upsert(rowsOf([doc('few-words', 'Five hundred words, many times', FEW_WORDS_REPEATED)]), { refuse: true });
    assert.deepEqual(refused, []);
    assert.deepEqual(await ids('catalog'), ['few-words']);
  });

  test('updateReferenceDatabase marks it failed in the inbox with the reason and goes on, also when resumed', async () => {
    const activities = createPreparationActivities({
      config: base,
      operational: ops,
      reference: ref,
      referenceUrl: refUrl,
      temporal: () => Promise.reject(new Error('not used here')),
    });
    await dropIntoInbox(ops, batch);
    const env = new MockActivityEnvironment();
    const update = (input: { lessonId: string; subject: string }) =>
      env.run(activities.updateReferenceDatabase, input) as ReturnType<typeof activities.updateReferenceDatabase>;
    for (const attempt of [1, 2]) {
      const result = await update({ lessonId: 'lesson-tsv', subject: 'documents' });
      assert.equal(result.taken, 3, `attempt ${attempt}`);
      assert.equal(result.applied, 2, `attempt ${attempt}`);
      assert.deepEqual(
        result.refused.map((r) => r.externalId),
        ['too-many-words'],
      );
      assert.match(result.refused[0]!.reason, /too long for tsvector/);
    }
    const { rows: inbox } = await ops.query<{ external_id: string; failure: string | null }>('SELECT external_id, failure FROM inbox ORDER BY id');
    assert.deepEqual(
      inbox.map((r) => [r.external_id, r.failure === null ? 'ok' : 'failed']),
      [
        ['before-1', 'ok'],
        ['too-many-words', 'failed'],
        ['after-1', 'ok'],
      ],
    );
    assert.deepEqual(await ids('catalog'), ['after-1', 'before-1']);
  });
});
