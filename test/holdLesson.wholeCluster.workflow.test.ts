/**
 * The whole-cluster switch (stubbed activities, real Temporal server): four groups of two,
 * copied and examined while serving; then every satellite's stand-in (its examination
 * instance) takes the new lesson, one load balancer change sends every user to it, the
 * own instances move behind them and a second change brings users back. Never two
 * lessons at once, never a satellite less. The real parts:
 * holdLesson.wholeCluster.integration.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RolloutStatus } from '../src/shared/rollout';
import { replayAndRecord } from './helpers/histories';
import { FakeCluster, startStubRollout, stubbedRolloutBed, waitForRollout } from './helpers/fakeCluster';

const GROUPS = { a: ['a-1', 'a-2'], b: ['b-1', 'b-2'], c: ['c-1', 'c-2'], d: ['d-1', 'd-2'] };
const SATELLITES = Object.values(GROUPS).flat();
const WHOLE = { copy: 'while-serving', consistency: 'whole-cluster', minServingSatellites: 6 } as const;

describe('holdLesson: the whole-cluster switch (stubbed activities, real Temporal server)', async () => {
  const bed = await stubbedRolloutBed(SATELLITES);
  const { client } = bed;

  test('one change moves every user to the new lesson: never two lessons at once, never below full capacity', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const handle = await startStubRollout(client, GROUPS, WHOLE);
    const status = (await handle.result()) as RolloutStatus;
    const id = status.lessonId;
    const { calls } = bed.cluster;
    assert.equal(status.phase, 'done');
    assert.deepEqual(bed.cluster.mixedAfter, [], 'users never reach two lessons at once');
    assert.equal(bed.cluster.lowestInService, 8, 'every satellite serves throughout (own instance or stand-in)');
    assert.deepEqual(
      [...bed.cluster.inService().entries()],
      SATELLITES.map((n) => [n, id]),
      'the own instances serve the new lesson',
    );
    assert.equal(bed.cluster.standInRunning.size, 0, 'the stand-ins stopped');
    assert.ok([...bed.cluster.standInState.values()].every((s) => s === 'maint'));
    // The switch is one change: every stand-in in, every own instance out.
    const standIns = SATELLITES.map((n) => `${n}-exam`).join(',');
    assert.ok(calls.includes(`lb:switch ready=${standIns} drain=${SATELLITES.join(',')}`), calls.join('\n'));
    // Every examination before any user moved; every own instance restarted on the new lesson behind its stand-in.
    const switchAt = calls.indexOf(`lb:switch ready=${standIns} drain=${SATELLITES.join(',')}`);
    for (const n of SATELLITES) {
      assert.ok(calls.indexOf(`${n}:exam`) < switchAt);
      assert.ok(calls.indexOf(`${n}:activate ${id}`) > switchAt);
    }
    assert.equal(status.mixedWindowMs, undefined);
    assert.equal(status.capacity?.lowestServing, 8);
    assert.equal(status.capacity?.satelliteSecondsOut, 0);
    await replayAndRecord(handle, 'holdLesson.whole-cluster.json');
  });

  test(
    'abort while users are on the stand-ins: one change back to the old lesson on the own instances, stand-ins retired',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      bed.cluster.failCheck.add('c-2');
      const handle = await startStubRollout(client, GROUPS, WHOLE);
      const halted = await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
      assert.equal(halted.halted!.step, 'whole-cluster switch: own instances to the new lesson');
      assert.deepEqual(halted.halted!.satellites, ['c-2']);
      assert.equal(bed.cluster.inService().size, 8, 'users are on the eight stand-ins');
      await handle.signal('abort', 'c-2 answers wrong');
      const status = (await handle.result()) as RolloutStatus;
      assert.equal(status.phase, 'aborted');
      assert.deepEqual(
        [...bed.cluster.inService().entries()],
        SATELLITES.map((n) => [n, 'old']),
      );
      assert.deepEqual(bed.cluster.mixedAfter, [], 'never two lessons at once, on the way back either');
      assert.equal(bed.cluster.lowestInService, 8);
      assert.equal(bed.cluster.standInRunning.size, 0);
    },
  );

  test('abort before the switch: the stand-ins retire and nobody left the load balancer', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    bed.cluster.failExam.add('b-1');
    const handle = await startStubRollout(client, GROUPS, WHOLE);
    await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
    await handle.signal('abort');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'aborted');
    assert.deepEqual([...bed.cluster.inService().values()], Array(8).fill('old'));
    assert.equal(bed.cluster.lowestInService, 8);
    assert.deepEqual(
      bed.cluster.calls.filter((c) => c.startsWith('lb:')),
      [],
    );
  });
});
