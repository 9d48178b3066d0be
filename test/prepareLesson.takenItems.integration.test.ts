/**
 * Inbox items taken by a prepareLesson run that never files its lesson, with the real
 * parts (Temporal, PostgreSQL, the workers, Apache and HAProxy). An item is "taken"
 * when its inbox row names the lesson (taken_by); only waiting rows (taken_by null) are
 * counted and taken by later lessons. A run that is terminated from outside cleans up
 * nothing: the next run takes its stale "updating" flag over and must give the ended
 * run's items back to the inbox, or they stay taken by a lesson that never comes (lost
 * outright when the run was terminated before it applied them). A cancelled run gives
 * them back itself, as an abort does.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { startPrepareLesson } from '../src/operator/prepare';
import type { PreparationStatus } from '../src/shared/preparation';
import type { InboxItem } from '../src/shared/subjectMatter';
import { replayAndRecord } from './helpers/histories';
import { drop, markedDocument, preparationTestBed, servedVersions, waitForStatus } from './helpers/preparation';

describe('prepareLesson ended after taking inbox items: nothing taken is lost', async () => {
  let marker = '';
  const { config, client, ops, ref } = await preparationTestBed('prepare-taken', (raw) => {
    // The test suite fails while the marker exists: a halt in proof-reading, after the items were applied.
    marker = path.join(path.dirname(raw.reference.lessonsDir), 'test-data-broken');
    raw.reference.testCommand = [
      'node',
      '-e',
      `if (require('node:fs').existsSync(${JSON.stringify(marker)})) { console.error('test data broken'); process.exit(3); }`,
    ];
  });

  /** The reference database refuses every write to the catalog: updateReferenceDatabase fails after taking its items. */
  const refuseCatalogWrites = () =>
    ref.query(`
      CREATE OR REPLACE FUNCTION test_refuse_catalog_writes() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'the test refuses writes to the catalog'; END $$;
      CREATE TRIGGER test_refuse_catalog_writes BEFORE INSERT OR UPDATE ON catalog
        FOR EACH ROW EXECUTE FUNCTION test_refuse_catalog_writes();`);
  const allowCatalogWrites = () => ref.query('DROP TRIGGER IF EXISTS test_refuse_catalog_writes ON catalog');

  const documents = (...words: string[]): InboxItem[] => words.map((w) => markedDocument(config, w));
  /** Where each item stands in the inbox: the lesson that took it, or "waiting". */
  const inboxState = async (items: InboxItem[]) => {
    const { rows } = await ops.query<{ external_id: string; taken_by: string | null; failed_at: Date | null }>(
      'SELECT external_id, taken_by, failed_at FROM inbox WHERE external_id = ANY($1) ORDER BY id',
      [items.map((i) => i.externalId)],
    );
    return Object.fromEntries(rows.map((r) => [r.external_id, r.failed_at ? 'failed' : (r.taken_by ?? 'waiting')]));
  };
  const every = (items: InboxItem[], state: string) => Object.fromEntries(items.map((i) => [i.externalId, state]));
  const reportLog = async (handle: { workflowId: string; firstExecutionRunId: string }) =>
    (await ops.query<{ log: string }>('SELECT log FROM reports WHERE run_key = $1', [`${handle.workflowId}/${handle.firstExecutionRunId}`])).rows[0]
      ?.log ?? '';

  /** The next run files a lesson that holds every item once: each taken by it, each in its folder and served. */
  const nextLessonFilesEach = async (items: InboxItem[], words: string[]) => {
    const handle = await startPrepareLesson(client, config, 'test');
    const next: PreparationStatus = await handle.result();
    assert.equal(next.phase, 'done', `the next run files a lesson: ${next.summary}`);
    assert.deepEqual(
      await inboxState(items),
      every(items, next.lessonId!),
      'every item is taken by the lesson that was filed, none by the ended one',
    );
    const subject = next.subjects.find((s) => s.subject === items[0]!.subject)!;
    assert.equal(subject.waiting, items.length, 'the items waited in the inbox again when the next run counted');
    assert.equal(subject.applied, items.length, 'and it applied each of them once');
    for (const item of items) {
      assert.ok(
        existsSync(path.join(config.reference.lessonsDir, next.lessonId!, 'items', item.subject, `${item.externalId}.json`)),
        item.externalId,
      );
    }
    assert.deepEqual(
      await servedVersions(config),
      config.satellites.map(() => next.lessonId!),
    );
    for (const word of words) assert.equal((await fetch(`${config.satellites[0]!.url}search/${word}.json`)).status, 200, word);
    return { handle, next, log: await reportLog(handle) };
  };

  test(
    'terminated while halted after taking the items, before applying them: the next run gives them back and files each once',
    { timeout: 300_000 },
    async () => {
      const words = ['quaggalint', 'dugongveil'];
      const items = documents(...words);
      await drop(ops, items);
      await refuseCatalogWrites();
      try {
        const handle = await startPrepareLesson(client, config, 'test');
        const halted = await waitForStatus(handle, (s) => s.halted !== null, 'halted', 180_000);
        assert.match(halted.halted!.step, /reference database/);
        assert.deepEqual(await inboxState(items), every(items, halted.lessonId!), 'the halted run took the items');
        await handle.terminate('the test: an operator ends the halted run from outside');
      } finally {
        await allowCatalogWrites();
      }
      const { handle, log } = await nextLessonFilesEach(items, words);
      assert.match(log, /2 inbox items taken by lesson \S+ of the ended run, never filed, were given back to the inbox/);
      await replayAndRecord(handle, 'prepareLesson.takeover.json');
    },
  );

  test(
    'terminated while halted in proof-reading, the items applied but not filed: given back, and filed once by the next lesson',
    { timeout: 300_000 },
    async () => {
      const words = ['okapisorrel', 'tapirglen'];
      const items = documents(...words);
      await drop(ops, items);
      mkdirSync(path.dirname(marker), { recursive: true });
      writeFileSync(marker, 'broken');
      try {
        const handle = await startPrepareLesson(client, config, 'test');
        const halted = await waitForStatus(handle, (s) => s.halted !== null, 'halted');
        assert.match(halted.halted!.step, /proof-read/);
        assert.deepEqual(await inboxState(items), every(items, halted.lessonId!), 'the halted run took the items');
        await handle.terminate('the test: an operator ends the halted run from outside');
      } finally {
        rmSync(marker, { force: true });
      }
      const { next, log } = await nextLessonFilesEach(items, words);
      assert.equal(next.subjects.find((s) => s.subject === items[0]!.subject)?.unfiled, items.length, 'their applied changes were still pending');
      assert.match(log, /2 inbox items taken by lesson \S+ of the ended run, never filed, were given back to the inbox/);
    },
  );

  test(
    'terminated while its filed lesson is held: the items stay with the filed lesson, and the next run applies none of them again',
    { timeout: 300_000 },
    async () => {
      const words = ['kinkajoufen'];
      const items = documents(...words);
      await drop(ops, items);
      const handle = await startPrepareLesson(client, config, 'test');
      const holding = await waitForStatus(handle, (s) => s.rollout !== undefined, 'holding the lesson', 180_000);
      await handle.terminate('the test: an operator ends the run while its lesson is held');
      // The rollout goes on by itself (abandoned by its parent) and ends.
      await client.workflow.getHandle(holding.rollout!.workflowId).result();

      const nextHandle = await startPrepareLesson(client, config, 'test');
      const next: PreparationStatus = await nextHandle.result();
      assert.equal(next.phase, 'nothing-to-do', next.summary);
      assert.deepEqual(await inboxState(items), every(items, holding.lessonId!), 'the items stay with the lesson that was filed');
      assert.match(await reportLog(nextHandle), /lesson \S+ of the ended run was filed: its inbox items stay with it/);
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => holding.lessonId!),
      );
    },
  );

  test(
    'cancelled while halted after taking the items: the run gives them back itself, and the next lesson files each once',
    { timeout: 300_000 },
    async () => {
      const words = ['narwhalbrisk', 'quollember'];
      const items = documents(...words);
      await drop(ops, items);
      await refuseCatalogWrites();
      try {
        const handle = await startPrepareLesson(client, config, 'test');
        const halted = await waitForStatus(handle, (s) => s.halted !== null, 'halted', 180_000);
        assert.deepEqual(await inboxState(items), every(items, halted.lessonId!), 'the halted run took the items');
        await handle.cancel();
        const err = await handle.result().then(
          () => assert.fail('the run should end cancelled'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, `ended cancelled: ${String(err)}`);
        assert.deepEqual(await inboxState(items), every(items, 'waiting'), 'the cancelled run gave its items back');
        assert.equal((await ops.query("SELECT 1 FROM flags WHERE name = 'updating'")).rowCount, 0, 'and unset the flag');
      } finally {
        await allowCatalogWrites();
      }
      await nextLessonFilesEach(items, words);
    },
  );
});
