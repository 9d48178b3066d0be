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
import { REFERENCE_TASK_QUEUE, satelliteTaskQueue } from '../src/shared/names';
import { pauseSignal, resumeSignal } from '../src/workflows/holdLesson';
import { testStack } from './helpers/stack';
import { clientForTest, runStubbedWorkers } from './helpers/workers';
import { FakeCluster, gate, startStubRollout, waitForRollout } from './helpers/fakeCluster';

const SATELLITES = ['a-1', 'a-2', 'b-1', 'b-2', 'c-1', 'c-2', 'd-1', 'd-2'];
const THREE = { a: ['a-1', 'a-2'], b: ['b-1', 'b-2'], c: ['c-1', 'c-2'] };
const FOUR = { ...THREE, d: ['d-1', 'd-2'] };

describe('holdLesson with more than two groups (stubbed activities, real Temporal server)', async () => {
  const config = await testStack();
  const { client } = await clientForTest(config);
  let cluster = new FakeCluster(SATELLITES);
  await runStubbedWorkers(config, {
    [REFERENCE_TASK_QUEUE]: () => cluster.reference(),
    ...Object.fromEntries(SATELLITES.map((name) => [satelliteTaskQueue(name), () => cluster.satellite(name)])),
  });
  const lbCalls = () => cluster.calls.filter((c) => c.startsWith('lb:'));

  test(
    'one lesson, three groups: the first waits ready, the switch takes the other two out, users never reach two lessons',
    { timeout: 60_000 },
    async () => {
      cluster = new FakeCluster(SATELLITES.slice(0, 6));
      const handle = await startStubRollout(client, THREE, { consistency: 'one-lesson', minServingSatellites: 2 });
      const result = await handle.result();
      assert.equal(result.phase, 'done');
      assert.deepEqual(cluster.mixedAfter, [], `two lessons at once after: ${cluster.mixedAfter.join(' | ')}`);
      assert.deepEqual(lbCalls(), [
        'lb:drain a-1,a-2',
        'lb:switch ready=a-1,a-2 drain=b-1,b-2,c-1,c-2',
        'lb:switch ready=b-1,b-2 drain=',
        'lb:switch ready=c-1,c-2 drain=',
      ]);
      assert.ok(cluster.lowestInService >= 2, `lowest ${cluster.lowestInService}`);
      assert.equal(result.mixedWindowMs, undefined);
      assert.equal(result.serving, 6);
    },
  );

  test('one lesson, four groups: two wait ready, then the halves swap in one change; capacity never below four', { timeout: 60_000 }, async () => {
    cluster = new FakeCluster(SATELLITES);
    const handle = await startStubRollout(client, FOUR, { consistency: 'one-lesson', minServingSatellites: 4 });
    const held = await waitForRollout(handle, (s) => s.groups[0]!.state === 'held-ready', 'group a held ready');
    assert.ok(
      held.groups[0]!.satellites.every((s) => s.state === 'ready' && s.lessonServed === undefined),
      `a waits ready, out of service: ${JSON.stringify(held.groups[0])}`,
    );
    const result = await handle.result();
    assert.equal(result.phase, 'done');
    assert.deepEqual(cluster.mixedAfter, [], `two lessons at once after: ${cluster.mixedAfter.join(' | ')}`);
    assert.deepEqual(lbCalls(), [
      'lb:drain a-1,a-2',
      'lb:drain b-1,b-2',
      'lb:switch ready=a-1,a-2,b-1,b-2 drain=c-1,c-2,d-1,d-2',
      'lb:switch ready=c-1,c-2 drain=',
      'lb:switch ready=d-1,d-2 drain=',
    ]);
    assert.equal(cluster.lowestInService, 4);
    assert.deepEqual(
      [...cluster.inService().values()],
      SATELLITES.map(() => result.lessonId),
    );
  });

  test('capacity first, three groups: each group rejoins at once, and the run reports the side-by-side window', { timeout: 60_000 }, async () => {
    cluster = new FakeCluster(SATELLITES.slice(0, 6));
    const handle = await startStubRollout(client, THREE, { consistency: 'capacity-first', minServingSatellites: 4, coffeeMs: 300 });
    const during = await waitForRollout(handle, (s) => s.mixed !== undefined, 'side by side');
    assert.match(during.mixed!.why, /capacity first/);
    const { memo } = await handle.describe();
    assert.match(String(memo?.summary), /side by side since/);
    const result = await handle.result();
    assert.equal(result.phase, 'done');
    assert.ok(cluster.mixedAfter.length > 0, 'users reached both lessons (the operator chose it)');
    assert.ok((result.mixedWindowMs ?? 0) > 0, `mixed window ${result.mixedWindowMs}`);
    assert.equal(result.mixed, undefined, 'one lesson again at the end');
    assert.ok(cluster.lowestInService >= 4);
    assert.match(cluster.reports.at(-1)!.summary, /side by side for [\d.]+ s/);
  });

  test('one lesson with a floor no switch can keep: refused before any satellite is touched', { timeout: 60_000 }, async () => {
    cluster = new FakeCluster(SATELLITES.slice(0, 6));
    const handle = await startStubRollout(client, THREE, { consistency: 'one-lesson', minServingSatellites: 4 });
    const err = await handle.result().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
    assert.equal((err.cause as ApplicationFailure).type, 'BadRolloutPlan');
    assert.match((err.cause as ApplicationFailure).message, /lower the minimum or choose capacity-first/);
    assert.deepEqual(cluster.calls, []);
  });

  test(
    'a pause while a group would wait ready: it rejoins instead (reported), and the rollout parks with everyone serving',
    { timeout: 60_000 },
    async () => {
      cluster = new FakeCluster(SATELLITES);
      const hold = gate();
      cluster.examHold = (name) => (name.startsWith('a-') ? hold.wait : Promise.resolve());
      const handle = await startStubRollout(client, FOUR, { consistency: 'one-lesson', minServingSatellites: 4 });
      await waitForRollout(handle, (s) => s.phase === 'lesson', 'lesson of a');
      await handle.signal(pauseSignal);
      hold.open();
      const paused = await waitForRollout(handle, (s) => s.phase === 'paused', 'paused');
      assert.equal(cluster.inService().size, 8, `everyone serves while paused (drained: ${[...cluster.drained].join(',')})`);
      assert.match(paused.mixed?.why ?? '', /paused/);
      await handle.signal(resumeSignal);
      const result = await handle.result();
      assert.equal(result.phase, 'done');
      assert.equal(result.mixed, undefined);
      assert.deepEqual(
        [...cluster.inService().values()],
        SATELLITES.map(() => result.lessonId),
      );
    },
  );
});
