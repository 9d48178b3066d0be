/**
 * prepareLesson with the real parts: the inbox and the reference database in PostgreSQL
 * (full-text index), lesson files proof-read through the reference's own Apache with
 * the built-in browser test (headless chromium), pg_dump, then holdLesson onto four
 * Apache satellites behind HAProxy.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { enrollClass } from '../src/operator/enroll';
import { PreparationRunning, startPrepareLesson } from '../src/operator/prepare';
import type { PreparationStatus } from '../src/shared/preparation';
import { replayAndRecord } from './helpers/histories';
import { drop, markedDocument, preparationTestBed, servedVersions, smallSample } from './helpers/preparation';

describe('prepareLesson on a real cluster', async () => {
  const { config, client, ops, ref } = await preparationTestBed('prepare');
  const frontend = `http://127.0.0.1:${config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0}`;
  const lessonCount = async () => Number((await ref.query<{ n: string }>('SELECT count(*) AS n FROM lessons')).rows[0]!.n);
  const reportOf = async (workflowId: string, runId: string) =>
    (await ops.query<{ status: string; summary: string }>('SELECT status, summary FROM reports WHERE run_key = $1', [`${workflowId}/${runId}`]))
      .rows[0];

  test('new inbox items become a lesson that every satellite serves; a new word is found through HAProxy', { timeout: 240_000 }, async () => {
    await drop(ops, [
      ...smallSample(config),
      markedDocument(config, 'quokkazygote'),
      // Refused (an id that cannot be a file name): reported in the inbox, not lost.
      { subject: 'documents', kind: 'document', externalId: '../escape', payload: { title: 'bad', body: 'bad' } },
    ]);
    const handle = await startPrepareLesson(client, config, 'test');
    const status: PreparationStatus = await handle.result();
    assert.equal(status.phase, 'done', status.summary);
    const lessonId = status.lessonId!;
    assert.deepEqual(
      await servedVersions(config),
      config.satellites.map(() => lessonId),
    );

    const search = await fetch(`${frontend}/search/quokkazygote.json`);
    assert.equal(search.status, 200);
    const answer = (await search.json()) as { hits: { id: string; title: string }[] };
    assert.deepEqual(
      answer.hits.map((h) => h.id),
      ['article-quokkazygote'],
    );

    assert.equal(status.stats!.records, 150);
    assert.equal(status.stats!.documents, 51);
    assert.ok(existsSync(status.stats!.backupFile), 'the pg_dump backup exists');
    const documents = status.subjects.find((s) => s.subject === 'documents')!;
    assert.equal(documents.refused, 1);
    assert.ok(documents.proofRead?.passed && documents.proofRead.checks > 10);
    const refused = await ops.query<{ failure: string }>("SELECT failure FROM inbox WHERE external_id = '../escape'");
    assert.match(refused.rows[0]!.failure, /external id/);
    assert.equal((await ops.query("SELECT 1 FROM flags WHERE name = 'updating'")).rowCount, 0, 'the updating flag is unset');
    assert.equal((await reportOf(handle.workflowId, handle.firstExecutionRunId))?.status, 'ok');
    await replayAndRecord(handle, 'prepareLesson.json');
  });

  test('nothing new in the inbox: no lesson, no rollout, and the report says so', { timeout: 120_000 }, async () => {
    const before = await lessonCount();
    const handle = await startPrepareLesson(client, config, 'test');
    const status = await handle.result();
    assert.equal(status.phase, 'nothing-to-do');
    assert.equal(status.rollout, undefined);
    assert.equal(await lessonCount(), before);
    const report = await reportOf(handle.workflowId, handle.firstExecutionRunId);
    assert.equal(report?.status, 'nothing-to-do');
    assert.match(report!.summary, /no new subject matter/);
  });

  test('a second prepareLesson started while one runs does not start a second lesson', { timeout: 240_000 }, async () => {
    const before = await lessonCount();
    await drop(ops, [markedDocument(config, 'wombatquill')]);
    const first = await startPrepareLesson(client, config, 'test');
    await assert.rejects(startPrepareLesson(client, config, 'test again'), PreparationRunning);
    const status = await first.result();
    assert.equal(status.phase, 'done', status.summary);
    assert.equal(await lessonCount(), before + 1);
    assert.deepEqual(
      await servedVersions(config),
      config.satellites.map(() => status.lessonId!),
    );
  });

  test('a host that is not the registered reference fails the lectureship check, non-retryable', { timeout: 120_000 }, async () => {
    await ops.query("UPDATE machines SET retired_at = now() WHERE role = 'reference'");
    await ops.query("INSERT INTO machines (name, role, host) VALUES ('other-teacher', 'reference', 'elsewhere')");
    try {
      await drop(ops, [markedDocument(config, 'numbatfern')]);
      const handle = await startPrepareLesson(client, config, 'test');
      const err = await handle.result().then(
        () => assert.fail('the run should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'NotTheReference');
      assert.equal(err.cause.nonRetryable, true);
      assert.match(err.cause.message, /registry names "other-teacher"/);
      assert.equal((await ops.query("SELECT 1 FROM flags WHERE name = 'updating'")).rowCount, 0);
      const waiting = await ops.query("SELECT 1 FROM inbox WHERE external_id = 'article-numbatfern' AND taken_at IS NULL");
      assert.equal(waiting.rowCount, 1, 'the inbox item is still waiting');
    } finally {
      await ops.query("DELETE FROM machines WHERE name = 'other-teacher'");
      await enrollClass(client, config);
    }
  });

  test('the lesson folder shares unchanged files with the previous lesson (hard links)', async () => {
    const { rows } = await ref.query<{ lesson_id: string }>('SELECT lesson_id FROM lessons ORDER BY filed_at');
    const [older, newer] = rows.slice(-2).map((r) => path.join(config.reference.lessonsDir, r.lesson_id));
    const { statSync } = await import('node:fs');
    const unchanged = path.join('items', 'records', 'book-000001.json');
    assert.equal(statSync(path.join(older!, unchanged)).ino, statSync(path.join(newer!, unchanged)).ino);
    assert.notEqual(statSync(path.join(older!, 'version')).ino, statSync(path.join(newer!, 'version')).ino);
  });
});
