/**
 * Copying while serving with the real parts: four Apache satellites in two groups behind
 * a real HAProxy, rsync, examinations on each satellite's examination instance, the
 * Temporal dev server, and a load generator asking HAProxy the whole time. Every
 * satellite is copied and examined beside the lesson it serves; a corrupted copy halts
 * with the whole cluster in service.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { lessonDir } from '../src/activities/satellite/lessons';
import { showServers } from '../src/activities/loadBalancer/runtimeApi';
import { startHoldLesson } from '../src/operator/rollout';
import type { RolloutStatus } from '../src/shared/rollout';
import { testCluster } from './helpers/cluster';
import { fileTestLesson, loadBetween, type TestLesson } from './helpers/lessons';
import { clientForTest, runSatelliteWorkersCorrupting, runWorkersForTest } from './helpers/workers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('holdLesson copying while serving on a real cluster (Apache, HAProxy, rsync)', async () => {
  const { config } = await testCluster('while-serving', (raw) => {
    raw.groups = { ...raw.groups, copy: 'while-serving', copiesAtOnce: 2 };
  });
  await runWorkersForTest(config, [{ role: 'orchestration' }, { role: 'reference' }]);
  // boy-2's disk corrupts one file right after the copy, while `fault.corruptNext` is set.
  const fault = await runSatelliteWorkersCorrupting(config, 'boy-2');

  const { client } = await clientForTest(config);
  const lb = config.loadBalancer.kind === 'haproxy' ? config.loadBalancer : undefined;
  const frontend = `http://127.0.0.1:${lb!.frontendPort}`;
  const lessons: TestLesson[] = [];

  /** What each satellite's users' port serves (its /version), in config order. */
  const served = () => Promise.all(config.satellites.map(async (s) => (await (await fetch(`${s.url}version`)).text()).trim()));
  /** The satellites HAProxy sends users to. */
  const inService = async () => (await showServers(lb!.runtimeApi, lb!.backend)).filter((s) => s.status === 'UP').map((s) => s.name);
  const all = config.satellites.map((s) => s.name);

  const waitFor = async (handle: WorkflowHandle, until: (s: RolloutStatus) => boolean, what: string) => {
    let last: RolloutStatus | undefined;
    for (let i = 0; i < 900; i++) {
      last = await handle.query<RolloutStatus>('status');
      if (until(last)) return last;
      await sleep(100);
    }
    assert.fail(`the rollout never reached ${what}: ${JSON.stringify(last)}`);
  };

  test('the first lesson reaches every satellite', { timeout: 120_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'ws-1'));
    const status = (await (await startHoldLesson(client, config, lessons[0]!.filed, 'test')).result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.deepEqual(await served(), Array(4).fill('ws-1'));
  });

  test(
    'under load: every satellite serves the old lesson while the new one is copied and examined, then the switch; 0 failed requests',
    { timeout: 180_000 },
    async () => {
      lessons.push(await fileTestLesson(config.reference.lessonsDir, 'ws-2', lessons[0]));
      const load = loadBetween(frontend, lessons[0]!, lessons[1]!);
      await sleep(300);
      const handle = await startHoldLesson(client, config, lessons[1]!.filed, 'test');
      // While the satellites learn, all of them serve the old lesson and HAProxy sends users to all of them.
      const learning = await waitFor(handle, (s) => s.phase === 'lesson-while-serving' || s.phase === 'done', 'the lesson while serving');
      assert.equal(learning.phase, 'lesson-while-serving');
      const [answers, up] = await Promise.all([served(), inService()]);
      assert.deepEqual(answers, Array(4).fill('ws-1'));
      assert.deepEqual(up.sort(), [...all].sort());
      const status = (await handle.result()) as RolloutStatus;
      await sleep(300);
      const result = await load.stop();
      console.log(
        `while serving: ${result.requests} requests, ${result.failed} failed, mixed window ${result.mixedWindowMs} ms; capacity ${JSON.stringify(status.capacity)}`,
      );
      assert.equal(status.phase, 'done');
      assert.equal(result.failed, 0, result.failures.join('\n'));
      assert.equal(result.neither, 0, result.failures.join('\n'));
      assert.deepEqual(await served(), Array(4).fill('ws-2'));
      // Every satellite was examined (on its examination instance) and copied only what changed.
      for (const s of status.groups.flatMap((g) => g.satellites)) {
        assert.equal(s.examination?.passed, true, s.name);
        assert.ok(s.bytesCopied > 0 && s.bytesCopied < 10_000, `${s.name} copied ${s.bytesCopied} bytes`);
      }
      // One group out at a time, and only for its switch.
      assert.equal(status.capacity?.lowestServing, 2);
      assert.ok(status.capacity!.satelliteSecondsOut > 0, JSON.stringify(status.capacity));
    },
  );

  test('a corrupted copy halts with every satellite still serving the old lesson; resume repairs and goes on', { timeout: 180_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'ws-3', lessons[1]));
    fault.corruptNext = 1;
    const load = loadBetween(frontend, lessons[1]!, lessons[2]!);
    const handle = await startHoldLesson(client, config, lessons[2]!.filed, 'test');
    const halted = await waitFor(handle, (s) => s.phase === 'halted', 'a halt');
    assert.equal(halted.halted!.step, 'lesson and examination');
    assert.deepEqual(halted.halted!.satellites, ['boy-2']);
    assert.match(halted.halted!.reason, /boy-2 failed the examination: file search\/term0\.json/);
    assert.equal(halted.serving, 4);
    const [answers, up] = await Promise.all([served(), inService()]);
    assert.deepEqual(answers, Array(4).fill('ws-2'), 'every satellite still serves the old lesson');
    assert.deepEqual(up.sort(), [...all].sort(), 'HAProxy sends users to every satellite');
    await handle.signal('resume');
    const status = (await handle.result()) as RolloutStatus;
    const result = await load.stop();
    assert.equal(status.phase, 'done');
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.deepEqual(await served(), Array(4).fill('ws-3'));
  });

  test('abort of such a halt leaves nothing out of service', { timeout: 180_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'ws-4', lessons[2]));
    fault.corruptNext = 1;
    const handle = await startHoldLesson(client, config, lessons[3]!.filed, 'test');
    await waitFor(handle, (s) => s.phase === 'halted', 'a halt');
    await handle.signal('abort', 'the data is bad');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'aborted');
    assert.deepEqual(await served(), Array(4).fill('ws-3'));
    assert.deepEqual((await inService()).sort(), [...all].sort());
    assert.equal(status.capacity?.lowestServing, 4);
    assert.equal(status.capacity?.satelliteSecondsOut, 0);
  });
});
