/**
 * holdLesson copying while serving (stubbed activities, real Temporal server): every
 * satellite copies and is examined beside the lesson it serves before any leaves the
 * load balancer; a failure there halts with the whole cluster in service; only the
 * switch takes a group out. The real parts: holdLesson.whileServing.integration.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RolloutStatus } from '../src/shared/rollout';
import { replayAndRecord } from './helpers/histories';
import { FakeCluster, gate, startStubRollout, stubbedRolloutBed, waitForRollout } from './helpers/fakeCluster';

const SATELLITES = ['boy-1', 'boy-2', 'girl-1', 'girl-2'];
const TWO_GROUPS = { boys: ['boy-1', 'boy-2'], girls: ['girl-1', 'girl-2'] };
const WHILE_SERVING = { copy: 'while-serving', consistency: 'capacity-first' } as const;

/** Index of the first call that took a satellite out of service (a drain, a switch that drains, a stop). */
const firstOut = (calls: string[]) => calls.findIndex((c) => c.startsWith('lb:drain') || /^lb:switch .*drain=\S/.test(c) || c.endsWith(':stop'));

describe('holdLesson copying while serving (stubbed activities, real Temporal server)', async () => {
  const bed = await stubbedRolloutBed(SATELLITES);
  const { client } = bed;

  test(
    'every satellite is copied and examined before any leaves the load balancer, at most copiesAtOnce at a time; the switch is checked through the real port',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      // Copies that last a moment, so that the ones allowed at once overlap.
      bed.cluster.copyHold = () => new Promise((r) => setTimeout(r, 300));
      const handle = await startStubRollout(client, TWO_GROUPS, { ...WHILE_SERVING, copiesAtOnce: 2 });
      const status = (await handle.result()) as RolloutStatus;
      const id = status.lessonId;
      const { calls } = bed.cluster;
      assert.equal(status.phase, 'done');
      assert.deepEqual([...bed.cluster.served.values()], [id, id, id, id]);
      const lastExam = Math.max(...SATELLITES.map((n) => calls.indexOf(`${n}:exam`)));
      assert.ok(SATELLITES.every((n) => calls.indexOf(`${n}:copy ${id}`) >= 0));
      assert.ok(lastExam < firstOut(calls), `every examination before the first satellite leaves: ${calls.join(' ')}`);
      assert.equal(bed.cluster.mostCopiesAtOnce, 2, 'two copies at once, not four');
      // The switch: drain, stop, repoint, start, the quick check, and only then back in.
      for (const n of SATELLITES) {
        const at = (c: string) => calls.indexOf(`${n}:${c}`);
        assert.ok(at('stop') < at(`activate ${id}`) && at(`activate ${id}`) < at('start') && at('start') < at('check'), calls.join(' '));
      }
      const boysIn = calls.findIndex((c) => c.startsWith('lb:switch ready=boy-1,boy-2'));
      assert.ok(boysIn > calls.indexOf('boy-2:check') && calls.indexOf('boy-2:check') > 0, calls.join(' '));
      // Capacity: one group out at a time, and only while it switches.
      assert.equal(bed.cluster.lowestInService, 2);
      assert.equal(status.capacity?.lowestServing, 2);
      assert.equal(status.capacity?.satellites, 4);
      assert.ok(status.capacity!.satelliteSecondsOut >= 0 && status.capacity!.satelliteSecondsOut < 30, JSON.stringify(status.capacity));
      const { memo } = await handle.describe();
      assert.match(String(memo?.summary), /satellite-seconds out of service, never fewer than 2 of 4 serving/);
      await replayAndRecord(handle, 'holdLesson.while-serving.json');
    },
  );

  test(
    'no pause configured, no timer: with coffee and the last cigarette at 0 a rollout starts no timer (the server fires one no sooner than about a second)',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      for (const copy of ['while-serving', 'out-of-service'] as const) {
        const handle = await startStubRollout(client, TWO_GROUPS, { copy, consistency: 'one-lesson', coffeeMs: 0, lastCigaretteMs: 0 });
        assert.equal(((await handle.result()) as RolloutStatus).phase, 'done');
        const timers = (await handle.fetchHistory()).events!.filter((e) => e.timerStartedEventAttributes);
        assert.deepEqual(
          timers.map((e) => e.userMetadata?.summary?.data?.toString()),
          [],
          `copy ${copy}: no timer for a pause of 0`,
        );
      }
    },
  );

  test(
    'a failed examination halts with every satellite still serving the old lesson; resume after the fix goes on',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      bed.cluster.failExam.add('girl-2');
      const handle = await startStubRollout(client, TWO_GROUPS, WHILE_SERVING);
      const halted = await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
      assert.equal(halted.halted!.step, 'lesson and examination');
      assert.deepEqual(halted.halted!.satellites, ['girl-2']);
      assert.equal(halted.serving, 4);
      assert.equal(bed.cluster.inService().size, 4, 'nobody left the load balancer');
      assert.equal(firstOut(bed.cluster.calls), -1, bed.cluster.calls.join(' '));
      assert.deepEqual(
        halted.groups.map((g) => g.state),
        ['learning', 'halted'],
      );
      bed.cluster.failExam.delete('girl-2');
      await handle.signal('resume');
      const status = (await handle.result()) as RolloutStatus;
      assert.equal(status.phase, 'done');
      assert.deepEqual([...bed.cluster.served.values()], Array(4).fill(status.lessonId));
      // Only the failed one was taught again.
      assert.equal(bed.cluster.calls.filter((c) => c === 'boy-1:exam').length, 1);
      assert.equal(bed.cluster.calls.filter((c) => c === 'girl-2:exam').length, 2);
    },
  );

  test('abort of that halt leaves nothing out of service and touches no load balancer', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    bed.cluster.failExam.add('boy-1');
    const handle = await startStubRollout(client, TWO_GROUPS, WHILE_SERVING);
    await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
    await handle.signal('abort', 'bad data');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'aborted');
    assert.equal(status.serving, 4);
    assert.deepEqual([...bed.cluster.inService().values()], ['old', 'old', 'old', 'old']);
    assert.equal(firstOut(bed.cluster.calls), -1, bed.cluster.calls.join(' '));
    assert.equal(bed.cluster.lowestInService, 4, 'never below full capacity');
    assert.equal(status.capacity?.lowestServing, 4);
    assert.equal(status.capacity?.satelliteSecondsOut, 0);
  });

  test('a satellite skipped while serving leaves with its group and stays out; the others switch', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    bed.cluster.failExam.add('boy-2');
    const handle = await startStubRollout(client, TWO_GROUPS, { ...WHILE_SERVING, minServingSatellites: 1 });
    await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
    await handle.executeUpdate<{ state: string }, [{ satellite: string }]>('skipSatellite', { args: [{ satellite: 'boy-2' }] });
    assert.equal(bed.cluster.inService().size, 4, 'the skip takes nobody out before its group switches');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.equal(status.serving, 3);
    assert.ok(!bed.cluster.running.has('boy-2'), 'the skipped satellite was stopped with its group');
    assert.ok(!bed.cluster.inService().has('boy-2'));
    assert.ok(!bed.cluster.calls.includes('boy-2:start'));
  });

  test('a failing quick check after the switch halts with that group out; abort puts it back on the old lesson', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    bed.cluster.failCheck.add('boy-1');
    const handle = await startStubRollout(client, TWO_GROUPS, WHILE_SERVING);
    const halted = await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
    assert.equal(halted.halted!.step, 'leave the classroom: quick check');
    assert.deepEqual(halted.halted!.satellites, ['boy-1']);
    assert.deepEqual([...bed.cluster.inService().keys()], ['girl-1', 'girl-2'], 'the girls serve; the boys are out');
    await handle.signal('abort');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'aborted');
    assert.deepEqual([...bed.cluster.inService().values()], ['old', 'old', 'old', 'old']);
  });

  test('a copy that takes long keeps the whole cluster serving meanwhile', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const slow = gate();
    bed.cluster.copyHold = (name) => (name === 'girl-1' ? slow.wait : Promise.resolve());
    const handle = await startStubRollout(client, TWO_GROUPS, WHILE_SERVING);
    const learning = await waitForRollout(
      handle,
      (s) => s.phase === 'lesson-while-serving' && s.groups[0]!.satellites.every((x) => x.state === 'passed'),
      'the boys examined while girl-1 copies',
    );
    assert.equal(learning.serving, 4);
    assert.equal(bed.cluster.inService().size, 4);
    slow.open();
    assert.equal(((await handle.result()) as RolloutStatus).phase, 'done');
  });
});
