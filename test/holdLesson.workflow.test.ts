/**
 * holdLesson's logic with stubbed activities (Temporal's advice for workflow logic),
 * on the real Temporal server: pause, the path without load balancer control, skip,
 * and an abort after the cutover that swaps the new group back. The real parts are
 * exercised by holdLesson.integration.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RolloutStatus } from '../src/shared/rollout';
import { replayAndRecord } from './helpers/histories';
import { FakeCluster, startStubRollout, stubbedRolloutBed, waitForRollout } from './helpers/fakeCluster';

const SATELLITES = ['boy-1', 'boy-2', 'girl-1', 'girl-2'];
const TWO_GROUPS = { boys: ['boy-1', 'boy-2'], girls: ['girl-1', 'girl-2'] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('holdLesson logic (stubbed activities, real Temporal server)', async () => {
  const bed = await stubbedRolloutBed(SATELLITES);
  const { client } = bed;

  test('with HAProxy control: boys out, copied, examined, swapped in for the girls in one change, then the girls', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const handle = await startStubRollout(client, TWO_GROUPS);
    const status = (await handle.result()) as RolloutStatus;
    const id = status.lessonId;
    assert.equal(status.phase, 'done');
    assert.equal(status.serving, 4);
    const lb = bed.cluster.calls.filter((c) => c.startsWith('lb:'));
    assert.deepEqual(lb, ['lb:drain boy-1,boy-2', 'lb:switch ready=boy-1,boy-2 drain=girl-1,girl-2', 'lb:switch ready=girl-1,girl-2 drain=']);
    // The boys start serving only after both passed their examination.
    const firstStart = bed.cluster.calls.indexOf('boy-1:start');
    assert.ok(bed.cluster.calls.indexOf('boy-1:exam') < firstStart && bed.cluster.calls.indexOf('boy-2:exam') < firstStart);
    // The girls stop only after the cutover.
    assert.ok(bed.cluster.calls.indexOf('girl-1:stop') > bed.cluster.calls.indexOf('lb:switch ready=boy-1,boy-2 drain=girl-1,girl-2'));
    assert.deepEqual([...bed.cluster.served.values()], [id, id, id, id]);
  });

  test("without load balancer control: no runtime API call, the seed's health-check waits instead", { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const handle = await startStubRollout(client, TWO_GROUPS, { loadBalancerControl: false, healthCheckWaitMs: 50 });
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.deepEqual(
      bed.cluster.calls.filter((c) => c.startsWith('lb:')),
      [],
    );
  });

  test('pause holds the rollout before the next group; resume lets it go on', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    const handle = await startStubRollout(client, TWO_GROUPS);
    await handle.signal('pause');
    const paused = await waitForRollout(handle, (s) => s.phase === 'paused', 'paused');
    assert.equal(paused.paused, true);
    const callsWhilePaused = bed.cluster.calls.length;
    await sleep(300);
    assert.equal(bed.cluster.calls.length, callsWhilePaused, 'nothing happens while paused');
    await handle.signal('resume');
    assert.equal(((await handle.result()) as RolloutStatus).phase, 'done');
  });

  test('skip: with a lower minimum, a failing satellite can be left out and the rollout goes on', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    bed.cluster.failExam.add('boy-2');
    const handle = await startStubRollout(client, TWO_GROUPS, { minServingSatellites: 1 });
    await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
    const skipped = await handle.executeUpdate<{ state: string }, [{ satellite: string }]>('skipSatellite', { args: [{ satellite: 'boy-2' }] });
    assert.equal(skipped.state, 'skipped');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.equal(status.serving, 3);
    assert.ok(!bed.cluster.calls.includes('boy-2:start'), 'the skipped satellite stays out');
    assert.ok(!bed.cluster.running.has('boy-2'));
  });

  test('abort after the cutover swaps the boys back to the old lesson, in one change, and restores full power', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    bed.cluster.failExam.add('girl-2');
    const handle = await startStubRollout(client, TWO_GROUPS);
    const halted = await waitForRollout(handle, (s) => s.phase === 'halted', 'halted');
    assert.equal(halted.halted!.group, 'girls');
    await handle.signal('abort');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'aborted');
    assert.equal(status.serving, 4);
    assert.deepEqual([...bed.cluster.served.values()], ['old', 'old', 'old', 'old']);
    assert.equal(bed.cluster.running.size, 4, 'every web server runs again');
    const lb = bed.cluster.calls.filter((c) => c.startsWith('lb:'));
    assert.deepEqual(lb.slice(-2), ['lb:switch ready=girl-1,girl-2 drain=boy-1,boy-2', 'lb:switch ready=boy-1,boy-2 drain=']);
  });

  // ---- the maintenance window -----------------------------------------------------------
  const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
  const MINUTE = 60_000;

  test('outside its window the rollout parks before the first group; resume lets it go on regardless', { timeout: 60_000 }, async () => {
    bed.cluster = new FakeCluster(SATELLITES);
    // A one-minute window twelve hours away: closed now, whatever the time of day.
    const opens = Math.floor(Date.now() / MINUTE) * MINUTE + 12 * 3_600_000;
    const handle = await startStubRollout(client, TWO_GROUPS, { maintenanceWindow: `daily ${hhmm(opens)}-${hhmm(opens + MINUTE)}` });
    const parked = await waitForRollout(handle, (s) => s.phase === 'waiting-for-window', 'waiting-for-window');
    assert.equal(parked.window?.open, false);
    assert.equal(parked.window?.parkedBefore, 'boys');
    assert.equal(Date.parse(parked.window!.opensAt!), opens, 'it says when the window opens');
    await sleep(300);
    assert.deepEqual(bed.cluster.calls, [], 'no satellite and no load balancer call while the window is closed');
    const { memo } = await handle.describe();
    assert.match(String(memo?.summary), /waiting-for-window.*waiting for the maintenance window \(daily .*\), opens /, 'the UI shows why it waits');
    await handle.signal('resume');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.equal(status.window?.ignored, true, 'the status says the window was overridden');
    await replayAndRecord(handle, 'holdLesson.window-resume.json');
  });

  test(
    'the first group goes in when the window opens; when it closes the last group is not taken out and waits for the next opening',
    { timeout: 200_000 },
    async () => {
      bed.cluster = new FakeCluster(SATELLITES);
      // Opens at the next full minute (UTC), closes a minute later.
      const opens = Math.ceil((Date.now() + 2_000) / MINUTE) * MINUTE;
      const closes = opens + MINUTE;
      // The boys' examination lasts until the window has closed.
      bed.cluster.examHold = async () => {
        if (Date.now() < closes) await sleep(closes - Date.now() + 500);
      };
      const handle = await startStubRollout(client, TWO_GROUPS, { maintenanceWindow: `daily ${hhmm(opens)}-${hhmm(closes)}` });
      const waiting = await waitForRollout(handle, (s) => s.phase === 'waiting-for-window', 'waiting-for-window');
      assert.equal(Date.parse(waiting.window!.opensAt!), opens);
      assert.equal(waiting.window?.parkedBefore, 'boys');

      // After the window closed: the boys serve the new lesson, the girls still the old one, none out of service.
      let parked: RolloutStatus | undefined;
      for (let i = 0; i < 1_800 && parked?.window?.parkedBefore !== 'girls'; i++) {
        parked = await handle.query<RolloutStatus>('status');
        await sleep(100);
      }
      assert.equal(parked?.phase, 'waiting-for-window', JSON.stringify(parked));
      assert.equal(parked.window?.parkedBefore, 'girls');
      assert.equal(Date.parse(parked.window!.opensAt!), opens + 24 * 3_600_000, 'the next opening is tomorrow');
      assert.ok(Date.now() >= closes, 'parked only after the window closed');
      assert.deepEqual(
        parked.groups.map((g) => g.state),
        ['serving-new', 'waiting'],
      );
      assert.equal(parked.serving, 4, 'every satellite serves while parked');
      assert.ok(
        bed.cluster.calls.includes('lb:switch ready=boy-1,boy-2 drain='),
        `the boys rejoined without a cutover: ${bed.cluster.calls.filter((c) => c.startsWith('lb:')).join(' | ')}`,
      );
      assert.ok(!bed.cluster.calls.some((c) => c.startsWith('girl-')), 'the girls were not touched');

      await handle.signal('abort');
      const status = (await handle.result()) as RolloutStatus;
      assert.equal(status.phase, 'aborted');
      assert.deepEqual([...bed.cluster.served.values()], ['old', 'old', 'old', 'old']);
      await replayAndRecord(handle, 'holdLesson.window-park-abort.json');
    },
  );
});
