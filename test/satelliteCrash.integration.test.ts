/**
 * A satellite worker killed (SIGKILL) in the middle of its copy: the copy stops
 * heartbeating, Temporal retries it once the worker is back, rsync picks up the
 * partial copy, and the rollout completes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { lessonDir } from '../src/activities/satellite/lessons';
import { startHoldLesson } from '../src/operator/rollout';
import type { RolloutStatus } from '../src/shared/rollout';
import { testCluster } from './helpers/cluster';
import { fileTestLesson } from './helpers/lessons';
import { clientForTest, runSatelliteWorkers, runWorkersForTest } from './helpers/workers';

const ROOT = path.resolve(import.meta.dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a satellite worker killed during the copy', async () => {
  // boy-1 copies at 2 MiB/s, so its copy of an 8 MB lesson takes a few seconds.
  const { config, configFile } = await testCluster('crash', (raw) => (raw.satellites[0].copyBandwidthLimit = 2048));
  await runWorkersForTest(config, [{ role: 'orchestration' }, { role: 'reference' }]);
  await runSatelliteWorkers(config, undefined, ['boy-2', 'girl-1', 'girl-2']);
  const { client } = await clientForTest(config);
  const boy1 = config.satellites[0]!;
  const startBoy1 = () =>
    execa('node', ['--import', 'tsx', 'src/workers/satellite.ts', '--config', configFile, '--name', 'boy-1'], {
      cwd: ROOT,
      reject: false,
      env: { LESSONPLAN_LOG_FORMAT: 'json' },
    });

  test('the rollout completes after the worker restarts, with the copy retried', { timeout: 180_000 }, async () => {
    const lesson = await fileTestLesson(config.reference.lessonsDir, 'lesson-crash', undefined, undefined, { bigFileBytes: 6_000_000 });
    let worker = startBoy1();
    const handle = await startHoldLesson(client, config, lesson.filed, 'test');
    for (let i = 0; ; i++) {
      const status = await handle.query<RolloutStatus>('status');
      if (status.groups[0]!.satellites[0]!.state === 'copying') break;
      assert.ok(i < 600, 'boy-1 never started copying');
      await sleep(100);
    }
    await sleep(1_500);
    worker.kill('SIGKILL');
    await worker;
    const partial = `${lessonDir(boy1, 'lesson-crash')}.partial`;
    assert.ok(existsSync(partial), 'the interrupted copy is partial');
    assert.ok(!existsSync(lessonDir(boy1, 'lesson-crash')), 'an interrupted copy never takes the lesson name');

    worker = startBoy1();
    try {
      const status = (await handle.result()) as RolloutStatus;
      assert.equal(status.phase, 'done');
      assert.equal((await (await fetch(`${boy1.url}version`)).text()).trim(), 'lesson-crash');
      const history = await handle.fetchHistory();
      const copyAttempts = history
        .events!.filter(
          (e) =>
            e.activityTaskScheduledEventAttributes?.taskQueue?.name === 'satellite-boy-1' &&
            e.activityTaskScheduledEventAttributes.activityType?.name === 'copyLesson',
        )
        .map((e) => e.eventId!.toString());
      const attempts = history.events!.filter(
        (e) => e.activityTaskStartedEventAttributes && copyAttempts.includes(e.activityTaskStartedEventAttributes.scheduledEventId!.toString()),
      );
      assert.ok(
        attempts.some((e) => e.activityTaskStartedEventAttributes!.attempt! >= 2),
        'the copy ran again after the crash',
      );
    } finally {
      worker.kill('SIGTERM');
      await worker;
    }
  });
});
