/**
 * rollBackLesson's logic with stubbed activities, on the real Temporal server: back to a
 * lesson every satellite holds, group by group, without copying; refused before anything
 * changes when a satellite no longer holds it. The real parts:
 * rollBackLesson.integration.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { RolloutStatus } from '../src/shared/rollout';
import { replayAndRecord } from './helpers/histories';
import { FakeCluster, startStubRollBack, startStubRollout, stubbedRolloutBed, waitForRollout } from './helpers/fakeCluster';

const SATELLITES = ['boy-1', 'boy-2', 'girl-1', 'girl-2'];
const TWO_GROUPS = { boys: ['boy-1', 'boy-2'], girls: ['girl-1', 'girl-2'] };

describe('rollBackLesson (stubbed activities, real Temporal server)', async () => {
  const bed = await stubbedRolloutBed(SATELLITES);
  const { client } = bed;

  /** A cluster that took a new lesson (copied while serving), so that every satellite holds the old one too. */
  const afterARollout = async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const rollout = (await (await startStubRollout(client, TWO_GROUPS, { copy: 'while-serving' })).result()) as RolloutStatus;
    assert.equal(rollout.phase, 'done');
    bed.cluster.calls = [];
    return rollout.lessonId;
  };

  test('back to the lesson before, group by group, with no copy and no examination; never below the floor', { timeout: 60_000 }, async () => {
    const current = await afterARollout();
    bed.cluster.lowestInService = 4;
    const handle = await startStubRollBack(client, TWO_GROUPS);
    const status = (await handle.result()) as RolloutStatus;
    const { calls } = bed.cluster;
    assert.equal(status.phase, 'done');
    assert.equal(status.lessonId, 'old');
    assert.deepEqual([...bed.cluster.inService().values()], ['old', 'old', 'old', 'old']);
    assert.ok(calls.includes(`ref:kept before ${current}`), calls.join(' '));
    assert.deepEqual(
      calls.filter((c) => / copy |:exam$/.test(c)),
      [],
      'nothing copied or examined',
    );
    assert.equal(calls.filter((c) => c.endsWith(':check')).length, 4, 'each satellite checked through its users port');
    assert.ok(bed.cluster.lowestInService >= 2);
    assert.equal(status.capacity?.lowestServing, 2);
    await replayAndRecord(handle, 'rollBackLesson.json');
  });

  test('refused, with the reason and before anything changes, when a satellite no longer holds the lesson', { timeout: 60_000 }, async () => {
    await afterARollout();
    bed.cluster.copied.get('girl-2')!.delete('old');
    const handle = await startStubRollBack(client, TWO_GROUPS);
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        String((err.cause as Error).message),
        /cannot roll back to lesson old without copying: girl-2 no longer holds lesson old\. Nothing was changed/,
      );
      return true;
    });
    assert.deepEqual(
      bed.cluster.calls.filter((c) => c.startsWith('lb:') || /:(stop|start|activate)/.test(c)),
      [],
    );
    assert.equal(bed.cluster.inService().size, 4);
  });

  test('a rollback halts like a rollout; abort puts every satellite back on the lesson it served before', { timeout: 60_000 }, async () => {
    const current = await afterARollout();
    bed.cluster.failCheck.add('boy-2');
    const handle = await startStubRollBack(client, TWO_GROUPS, { toLessonId: 'old' });
    const halted = await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
    assert.equal(halted.halted!.step, 'leave the classroom: quick check');
    await handle.signal('abort');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'aborted');
    assert.deepEqual([...bed.cluster.inService().values()], Array(4).fill(current));
  });
});
