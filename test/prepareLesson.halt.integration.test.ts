/**
 * prepareLesson halting on a failed proof-read, with the real parts: the test suite is
 * a command that fails while a marker file exists (an operator's broken test data),
 * so the run halts before any satellite is touched; `resume` after the fix goes on,
 * and `abort` leaves the flag unset, the satellites untouched, and the prepared
 * changes for the next lesson.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { lessonDir } from '../src/activities/satellite/lessons';
import { startPrepareLesson } from '../src/operator/prepare';
import { replayAndRecord } from './helpers/histories';
import { drop, markedDocument, preparationTestBed, servedVersions, smallSample, waitForStatus } from './helpers/preparation';

describe('prepareLesson halts on a failed proof-read', async () => {
  let marker = '';
  const { config, client, ops, ref } = await preparationTestBed('prepare-halt', (raw) => {
    marker = path.join(path.dirname(raw.reference.lessonsDir), 'test-data-broken');
    raw.reference.keepLessons = 2;
    raw.reference.testCommand = [
      'node',
      '-e',
      `if (require('node:fs').existsSync(${JSON.stringify(marker)})) { console.error('test data broken'); process.exit(3); }`,
    ];
  });
  const updatingFlag = async () => (await ops.query("SELECT 1 FROM flags WHERE name = 'updating'")).rowCount;
  const untouched = async (lessonId: string, served: string) => {
    assert.deepEqual(
      await servedVersions(config),
      config.satellites.map(() => served),
      'every satellite serves the previous lesson',
    );
    for (const s of config.satellites) assert.equal(existsSync(lessonDir(s, lessonId)), false, `${s.name} has no copy of ${lessonId}`);
  };

  // A first lesson, so that "untouched" means: still serving it.
  await drop(ops, smallSample(config, 60, 20));
  const baseline = await (await startPrepareLesson(client, config, 'test')).result();
  assert.equal(baseline.phase, 'done', baseline.summary);

  test('a failing test suite halts before any satellite is touched; resume after the fix goes on', { timeout: 240_000 }, async () => {
    writeFileSync(marker, 'broken');
    await drop(ops, [markedDocument(config, 'axolotlrune')]);
    const handle = await startPrepareLesson(client, config, 'test');
    const halted = await waitForStatus(handle, (s) => s.halted !== null, 'halted');
    assert.match(halted.halted!.step, /proof-read/);
    assert.match(halted.halted!.reason, /test data broken/);
    assert.equal(await updatingFlag(), 1, 'the flag is set while the run is halted');
    await untouched(halted.lessonId!, baseline.lessonId!);
    // The halt shows in the status as it opens; its report is written right after (an activity), so wait for it.
    let reported: string | undefined;
    for (let i = 0; i < 100 && reported === undefined; i++) {
      const report = await ops.query<{ status: string }>('SELECT status FROM reports WHERE run_key = $1', [
        `${handle.workflowId}/${handle.firstExecutionRunId}/halt-1`,
      ]);
      reported = report.rows[0]?.status;
      if (reported === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(reported, 'halted');

    rmSync(marker);
    await handle.signal('resume');
    const done = await handle.result();
    assert.equal(done.phase, 'done', done.summary);
    assert.deepEqual(
      await servedVersions(config),
      config.satellites.map(() => done.lessonId!),
    );
    assert.equal(await updatingFlag(), 0);
    await replayAndRecord(handle, 'prepareLesson.halt-resume.json');
  });

  test('abort leaves the flag unset and the satellites untouched; the changes go out with the next lesson', { timeout: 300_000 }, async () => {
    const [served] = await servedVersions(config);
    writeFileSync(marker, 'broken');
    await drop(ops, [markedDocument(config, 'pangolinmoss')]);
    const handle = await startPrepareLesson(client, config, 'test');
    const halted = await waitForStatus(handle, (s) => s.halted !== null, 'halted');
    await handle.signal('abort', 'test data cannot be fixed today');
    const aborted = await handle.result();
    assert.equal(aborted.phase, 'aborted');
    assert.equal(await updatingFlag(), 0, 'the flag is unset');
    await untouched(halted.lessonId!, served!);
    assert.equal(existsSync(path.join(config.reference.lessonsDir, halted.lessonId!)), false, 'the unfiled lesson folder is gone');
    assert.equal((await ref.query('SELECT 1 FROM lessons WHERE lesson_id = $1', [halted.lessonId])).rowCount, 0, 'nothing was filed');
    await replayAndRecord(handle, 'prepareLesson.abort.json');

    // The next run finds the prepared but unfiled change and files it.
    rmSync(marker);
    const next = await (await startPrepareLesson(client, config, 'test')).result();
    assert.equal(next.phase, 'done', next.summary);
    // Its inbox item waits again, and its row in the reference database is still pending: neither is lost.
    const documents = next.subjects.find((s) => s.subject === 'documents');
    assert.equal(documents?.waiting, 1);
    assert.equal(documents?.unfiled, 1);
    const search = await fetch(`${config.satellites[0]!.url}search/pangolinmoss.json`);
    assert.equal(search.status, 200);

    // keepLessons: 2 — the first of the three filed lessons and its backup are pruned.
    const filed = await ref.query<{ lesson_id: string }>('SELECT lesson_id FROM lessons ORDER BY filed_at');
    assert.deepEqual(
      filed.rows.map((r) => r.lesson_id),
      [served!, next.lessonId!],
    );
    assert.equal(existsSync(path.join(config.reference.lessonsDir, baseline.lessonId!)), false, 'the oldest lesson folder is pruned');
    assert.equal(existsSync(baseline.stats!.backupFile), false, 'and its backup');
  });
});
