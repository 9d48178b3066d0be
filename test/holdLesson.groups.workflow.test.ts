/**
 * More than two groups (issue 13, item 7), with stubbed activities on the real Temporal
 * server: one lesson at a time keeps the groups taught before the switch ready and out
 * of service, then swaps the whole cluster in one load balancer change, so users never
 * reach two lessons at once; capacity first lets each group rejoin at once and reports
 * the window in which users get both; a pause never parks a ready group out of service.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { pauseSignal, resumeSignal } from '../src/workflows/holdLesson';
import { FakeCluster, stubbedRolloutBed, gate, startStubRollout, waitForRollout } from './helpers/fakeCluster';

const SATELLITES = ['a-1', 'a-2', 'b-1', 'b-2', 'c-1', 'c-2', 'd-1', 'd-2'];
const THREE = { a: ['a-1', 'a-2'], b: ['b-1', 'b-2'], c: ['c-1', 'c-2'] };
const FOUR = { ...THREE, d: ['d-1', 'd-2'] };

describe('holdLesson with more than two groups (stubbed activities, real Temporal server)', async () => {
  const bed = await stubbedRolloutBed(SATELLITES);
  const { client } = bed;
  const lbCalls = () => bed.cluster.calls.filter((c) => c.startsWith('lb:'));

  test(
    'one lesson, three groups: the first waits ready, the switch takes the other two out, users never reach two lessons',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES.slice(0, 6));
      const handle = await startStubRollout(client, THREE, { consistency: 'one-lesson', minServingSatellites: 2 });
      const result = await handle.result();
      assert.equal(result.phase, 'done');
      assert.deepEqual(bed.cluster.mixedAfter, [], `two lessons at once after: ${bed.cluster.mixedAfter.join(' | ')}`);
      assert.deepEqual(lbCalls(), [
        'lb:drain a-1,a-2',
        'lb:switch ready=a-1,a-2 drain=b-1,b-2,c-1,c-2',
        'lb:switch ready=b-1,b-2 drain=',
        'lb:switch ready=c-1,c-2 drain=',
      ]);
      assert.ok(bed.cluster.lowestInService >= 2, `lowest ${bed.cluster.lowestInService}`);
      assert.equal(result.mixedWindowMs, undefined);
      assert.equal(result.serving, 6);
    },
  );

  test('one lesson, four groups: two wait ready, then the halves swap in one change; capacity never below four', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const handle = await startStubRollout(client, FOUR, { consistency: 'one-lesson', minServingSatellites: 4 });
    const held = await waitForRollout(handle, (s) => s.groups[0]!.state === 'held-ready', 'group a held ready');
    assert.ok(
      held.groups[0]!.satellites.every((s) => s.state === 'ready' && s.lessonServed === undefined),
      `a waits ready, out of service: ${JSON.stringify(held.groups[0])}`,
    );
    const result = await handle.result();
    assert.equal(result.phase, 'done');
    assert.deepEqual(bed.cluster.mixedAfter, [], `two lessons at once after: ${bed.cluster.mixedAfter.join(' | ')}`);
    assert.deepEqual(lbCalls(), [
      'lb:drain a-1,a-2',
      'lb:drain b-1,b-2',
      'lb:switch ready=a-1,a-2,b-1,b-2 drain=c-1,c-2,d-1,d-2',
      'lb:switch ready=c-1,c-2 drain=',
      'lb:switch ready=d-1,d-2 drain=',
    ]);
    assert.equal(bed.cluster.lowestInService, 4);
    assert.deepEqual(
      [...bed.cluster.inService().values()],
      SATELLITES.map(() => result.lessonId),
    );
  });

  test('capacity first, three groups: each group rejoins at once, and the run reports the side-by-side window', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES.slice(0, 6));
    const handle = await startStubRollout(client, THREE, { consistency: 'capacity-first', minServingSatellites: 4, coffeeMs: 300 });
    const during = await waitForRollout(handle, (s) => s.mixed !== undefined, 'side by side');
    assert.match(during.mixed!.why, /capacity first/);
    const { memo } = await handle.describe();
    assert.match(String(memo?.summary), /side by side since/);
    const result = await handle.result();
    assert.equal(result.phase, 'done');
    assert.ok(bed.cluster.mixedAfter.length > 0, 'users reached both lessons (the operator chose it)');
    assert.ok((result.mixedWindowMs ?? 0) > 0, `mixed window ${result.mixedWindowMs}`);
    assert.equal(result.mixed, undefined, 'one lesson again at the end');
    assert.ok(bed.cluster.lowestInService >= 4);
    assert.match(bed.cluster.reports.at(-1)!.summary, /side by side for [\d.]+ s/);
  });

  test('one lesson with a floor no switch can keep: refused before any satellite is touched', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES.slice(0, 6));
    const handle = await startStubRollout(client, THREE, { consistency: 'one-lesson', minServingSatellites: 4 });
    const err = await handle.result().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
    assert.equal((err.cause as ApplicationFailure).type, 'BadRolloutPlan');
    assert.match((err.cause as ApplicationFailure).message, /lower the minimum or choose capacity-first/);
    assert.deepEqual(bed.cluster.calls, []);
  });

  test(
    'a pause while a group would wait ready: it rejoins instead (reported), and the rollout parks with everyone serving',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      const hold = gate();
      bed.cluster.examHold = (name) => (name.startsWith('a-') ? hold.wait : Promise.resolve());
      const handle = await startStubRollout(client, FOUR, { consistency: 'one-lesson', minServingSatellites: 4 });
      await waitForRollout(handle, (s) => s.phase === 'lesson', 'lesson of a');
      await handle.signal(pauseSignal);
      hold.open();
      const paused = await waitForRollout(handle, (s) => s.phase === 'paused', 'paused');
      assert.equal(bed.cluster.inService().size, 8, `everyone serves while paused (drained: ${[...bed.cluster.drained].join(',')})`);
      assert.match(paused.mixed?.why ?? '', /paused/);
      await handle.signal(resumeSignal);
      const result = await handle.result();
      assert.equal(result.phase, 'done');
      assert.equal(result.mixed, undefined);
      assert.deepEqual(
        [...bed.cluster.inService().values()],
        SATELLITES.map(() => result.lessonId),
      );
    },
  );
});
