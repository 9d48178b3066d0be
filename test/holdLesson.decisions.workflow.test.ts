/**
 * The operator's decisions on a rollout do what they say (issue 13), with stubbed
 * activities on the real Temporal server: a cancel from the UI or CLI puts every
 * satellite back like `abort`; a pause or a closing window never parks a group out of
 * service; a retry belongs to the halt it was made for; a skip is refused where it
 * could not take effect; a dead examination is retried after a missed heartbeat or two.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { RolloutStatus } from '../src/shared/rollout';
import { abortSignal, pauseSignal, resumeSignal, retrySatelliteUpdate, skipSatelliteUpdate } from '../src/workflows/holdLesson';
import { replayAndRecord } from './helpers/histories';
import { FakeCluster, stubbedRolloutBed, gate, startStubRollout, waitForRollout } from './helpers/fakeCluster';

const SATELLITES = ['boy-1', 'boy-2', 'girl-1', 'girl-2'];
const TWO_GROUPS = { boys: ['boy-1', 'boy-2'], girls: ['girl-1', 'girl-2'] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('holdLesson: operator decisions (stubbed activities, real Temporal server)', async () => {
  const bed = await stubbedRolloutBed(SATELLITES);
  const { client } = bed;

  /** After the run: every satellite runs, is in the load balancer, and they all serve one lesson. */
  const assertWholeCluster = (lesson: string) => {
    assert.deepEqual([...bed.cluster.inService().entries()].sort(), SATELLITES.map((s) => [s, lesson]).sort(), JSON.stringify(bed.cluster.calls));
  };

  test(
    'a cancel while the second group is halted puts every satellite back on the old lesson, reports, and ends cancelled',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      bed.cluster.failExam.add('girl-2');
      const handle = await startStubRollout(client, TWO_GROUPS);
      await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
      await handle.cancel();
      const err = await handle.result().then(
        () => assert.fail('the run should end cancelled'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, `ended cancelled: ${String(err)}`);
      assertWholeCluster('old');
      assert.equal(bed.cluster.reports.at(-1)?.status, 'aborted', JSON.stringify(bed.cluster.reports));
      assert.match(bed.cluster.reports.at(-1)!.summary, /cancel/);
      const status = await handle.query<RolloutStatus>('status');
      assert.equal(status.phase, 'aborted');
      assert.equal(status.serving, 4);
      await replayAndRecord(handle, 'holdLesson.cancel.json');
    },
  );

  test('a cancel during the first group lesson brings the group back into service', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const hold = gate();
    bed.cluster.copyHold = () => hold.wait;
    const handle = await startStubRollout(client, TWO_GROUPS);
    await waitForRollout(handle, (s) => s.phase === 'lesson', 'lesson');
    await handle.cancel();
    await assert.rejects(handle.result(), WorkflowFailedError);
    hold.open();
    assertWholeCluster('old');
    assert.equal(bed.cluster.reports.at(-1)?.status, 'aborted');
  });

  test('a pause just before the cutover: the first group rejoins and nothing waits out of service', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const hold = gate();
    bed.cluster.examHold = (name) => (name.startsWith('boy') ? hold.wait : Promise.resolve());
    const handle = await startStubRollout(client, TWO_GROUPS);
    await waitForRollout(handle, (s) => s.phase === 'lesson', 'lesson');
    await handle.signal(pauseSignal);
    hold.open();
    const paused = await waitForRollout(handle, (s) => s.phase === 'paused', 'paused');
    // Parked: nobody is out of service, and users get one lesson only (the boys' new one is not exposed beside the girls' old one in a cutover gone half).
    await sleep(200);
    assert.equal(
      bed.cluster.inService().size,
      4,
      `all four serve while paused: ${JSON.stringify([...bed.cluster.inService()])} ${bed.cluster.calls.join(' | ')}`,
    );
    assert.equal(paused.serving, 4);
    await handle.signal(resumeSignal);
    assert.equal((await handle.result()).phase, 'done');
    assertWholeCluster((await handle.query<RolloutStatus>('status')).lessonId);
  });

  test('a pause during the coffee after the cutover: the drained last group goes on, the run ends done', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const handle = await startStubRollout(client, TWO_GROUPS, { coffeeMs: 1_500 });
    await waitForRollout(handle, (s) => s.phase === 'coffee', 'coffee');
    await handle.signal(pauseSignal);
    // Watch every status until the end: never parked while someone is out of service.
    let result: RolloutStatus | undefined;
    void handle.result().then((r) => (result = r));
    while (!result) {
      const s = await handle.query<RolloutStatus>('status');
      if (s.phase === 'paused' || s.phase === 'waiting-for-window') {
        assert.equal(bed.cluster.inService().size, 4, `parked in ${s.phase} with ${[...bed.cluster.drained].join(',')} drained`);
      }
      await sleep(50);
    }
    assert.equal(result.phase, 'done');
    assertWholeCluster(result.lessonId);
  });

  test(
    'a retry still running when resume arrives: the rollout waits for it, and the satellite leaves the classroom',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      bed.cluster.failExam.add('boy-2');
      const handle = await startStubRollout(client, TWO_GROUPS);
      const halted = await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
      assert.deepEqual(halted.halted?.satellites, ['boy-2']);
      // The fix: boy-2 passes now, but its second copy takes a while.
      bed.cluster.failExam.delete('boy-2');
      const slowCopy = gate();
      bed.cluster.copyHold = (name) => (name === 'boy-2' ? slowCopy.wait : Promise.resolve());
      const retried = handle.executeUpdate(retrySatelliteUpdate, { args: [{ satellite: 'boy-2' }] });
      await waitForRollout(handle, (s) => s.groups[0]!.satellites[1]!.state === 'copying', 'boy-2 copying again');
      await handle.signal(resumeSignal);
      await sleep(300);
      slowCopy.open();
      assert.equal((await retried).state, 'passed');
      const result = await handle.result();
      assert.equal(result.phase, 'done');
      assert.equal(result.serving, 4);
      assertWholeCluster(result.lessonId);
    },
  );

  test('skip and retry are refused outside a lesson halt, naming the halted step', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    bed.cluster.failStop.set('boy-2', 'boy-2: the port is held by another program');
    const handle = await startStubRollout(client, TWO_GROUPS, { minServingSatellites: 1 });
    const halted = await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
    assert.match(halted.halted!.step, /stop chatting/);
    for (const update of [skipSatelliteUpdate, retrySatelliteUpdate]) {
      await assert.rejects(
        handle.executeUpdate(update, { args: [{ satellite: 'boy-2' }] }),
        (e: unknown) => e instanceof WorkflowUpdateFailedError && /lesson or examination/.test(String((e.cause as Error)?.message)),
      );
    }
    const still = await handle.query<RolloutStatus>('status');
    assert.equal(still.halted?.since, halted.halted?.since, 'the same halt, untouched');
    bed.cluster.failStop.clear();
    await handle.signal(resumeSignal);
    assert.equal((await handle.result()).phase, 'done');
  });

  test('an examination whose worker went silent is tried again after a missed heartbeat or two, not minutes', { timeout: 90_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const attempts: number[] = [];
    bed.cluster.heartbeats = false;
    bed.cluster.examHold = async (name) => {
      if (name !== 'boy-1') return;
      attempts.push(Date.now());
      // The first attempt hangs without a heartbeat, as when its worker died mid-examination.
      if (attempts.length === 1) await new Promise((r) => setTimeout(r, 80_000).unref());
    };
    const handle = await startStubRollout(client, TWO_GROUPS);
    const result = await handle.result();
    assert.equal(result.phase, 'done');
    assert.equal(attempts.length, 2);
    const waited = attempts[1]! - attempts[0]!;
    assert.ok(waited < 40_000, `the second attempt started ${Math.round(waited / 1000)} s after the first`);
  });

  test(
    'terminated after the cutover, a rollout left the last group out: the next one teaches that group first and never drops below the floor',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      const hold = gate();
      bed.cluster.copyHold = (name) => (name.startsWith('girl') ? hold.wait : Promise.resolve());
      const first = await startStubRollout(client, TWO_GROUPS);
      await waitForRollout(first, (s) => s.groups[1]!.satellites.every((x) => x.state === 'copying'), 'the girls copying');
      await first.terminate('test: a terminated run cannot clean up');
      hold.open();
      assert.deepEqual([...bed.cluster.inService().keys()], ['boy-1', 'boy-2'], 'the terminated run left the girls out');
      bed.cluster.lowestInService = 2;
      const second = await startStubRollout(client, TWO_GROUPS);
      const result = await second.result();
      assert.equal(result.phase, 'done');
      assert.ok(bed.cluster.lowestInService >= 2, `in service fell to ${bed.cluster.lowestInService}: ${bed.cluster.calls.slice(-20).join(' | ')}`);
      assertWholeCluster(result.lessonId);
    },
  );

  test('terminated during the first group lesson: the next rollout brings that group back before anything else', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const hold = gate();
    bed.cluster.copyHold = () => hold.wait;
    const first = await startStubRollout(client, TWO_GROUPS);
    await waitForRollout(first, (s) => s.phase === 'lesson', 'lesson');
    await first.terminate('test: a terminated run cannot clean up');
    hold.open();
    assert.deepEqual([...bed.cluster.inService().keys()], ['girl-1', 'girl-2']);
    bed.cluster.calls = [];
    const second = await startStubRollout(client, TWO_GROUPS);
    const status = await waitForRollout(second, (s) => s.serving === 4 || s.phase === 'done', 'the boys back');
    assert.equal(status.serving, 4, 'repaired before the first group goes in');
    assert.equal(bed.cluster.calls.filter((c) => c.startsWith('lb:'))[0], 'lb:switch ready=boy-1,boy-2 drain=', bed.cluster.calls.join(' | '));
    const result = await second.result();
    assert.equal(result.phase, 'done');
    assertWholeCluster(result.lessonId);
  });

  test(
    'two satellites failing one step together make one halt that one resume ends; an abort then restores group by group above the floor',
    { timeout: 60_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      bed.cluster.failStop.set('boy-1', 'boy-1: the port is held by another program');
      bed.cluster.failStop.set('boy-2', 'boy-2: the port is held by another program');
      bed.cluster.failExam.add('girl-2');
      const groups = { boys: ['boy-1', 'boy-2'], girl1: ['girl-1'], girl2: ['girl-2'] };
      const handle = await startStubRollout(client, groups, { consistency: 'capacity-first' });
      const stopHalt = await waitForRollout(handle, (s) => s.halted !== null, 'halted in stop chatting');
      assert.equal(stopHalt.halted?.step, 'stop chatting: stop web server');
      assert.deepEqual(stopHalt.halted?.satellites, ['boy-1', 'boy-2'], 'one halt names both');
      bed.cluster.failStop.clear();
      await handle.signal(resumeSignal);
      const examHalt = await waitForRollout(handle, (s) => s.halted?.group === 'girl2', "halted in girl-2's examination");
      assert.deepEqual(examHalt.halted?.satellites, ['girl-2']);
      bed.cluster.lowestInService = 4;
      bed.cluster.calls = [];
      await handle.signal(abortSignal, 'test: back to the old lesson');
      const result = await handle.result();
      assert.equal(result.phase, 'aborted');
      assert.equal(result.serving, 4);
      assertWholeCluster('old');
      // girl-2 comes back as girl-1 (the last group on the new lesson) goes; the boys too would take the cluster to 1: they follow.
      const lb = bed.cluster.calls.filter((c) => c.startsWith('lb:switch') || c.startsWith('lb:drain'));
      assert.deepEqual(lb, [
        'lb:switch ready=girl-2 drain=girl-1',
        'lb:switch ready=girl-1 drain=',
        'lb:drain boy-1,boy-2',
        'lb:switch ready=boy-1,boy-2 drain=',
      ]);
      assert.ok(bed.cluster.lowestInService >= 2, `in service fell to ${bed.cluster.lowestInService}: ${bed.cluster.calls.join(' | ')}`);
      await replayAndRecord(handle, 'holdLesson.restore-by-groups.json');
    },
  );
});
