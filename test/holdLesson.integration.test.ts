/**
 * holdLesson with the real parts, in the source document's order (groups.copy:
 * out-of-service): four Apache satellites in two groups behind a real HAProxy, rsync copies, the examination through Apache, the Temporal dev server,
 * while a bounded load generator asks HAProxy the whole time.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { temporalCliPath } from '../src/stack/toolPaths';
import { lessonDir } from '../src/activities/satellite/lessons';
import { type LoadResult } from '../src/cluster/loadGenerator';
import { startHoldLesson } from '../src/operator/rollout';
import type { RolloutStatus } from '../src/shared/rollout';
import { testCluster } from './helpers/cluster';
import { replayAndRecord } from './helpers/histories';
import { fileTestLesson, loadBetween, type TestLesson } from './helpers/lessons';
import { clientForTest, runSatelliteWorkersCorrupting, runWorkersForTest } from './helpers/workers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('holdLesson on a real cluster (Apache, HAProxy, rsync)', async () => {
  // The source document's order: each group out first, then copied and examined (copying while serving: holdLesson.whileServing).
  const { config } = await testCluster('rollout', (raw) => {
    raw.groups = { ...raw.groups, copy: 'out-of-service' };
  });
  await runWorkersForTest(config, [{ role: 'orchestration' }, { role: 'reference' }]);
  // boy-2's disk corrupts one file right after the copy, while `fault.corruptNext` is set.
  const fault = await runSatelliteWorkersCorrupting(config, 'boy-2');

  const { client, endpoint } = await clientForTest(config);
  const lb = config.loadBalancer.kind === 'haproxy' ? config.loadBalancer : undefined;
  const lessons: TestLesson[] = [];
  const frontend = `http://127.0.0.1:${lb!.frontendPort}`;

  const served = async (names = config.satellites.map((s) => s.name)) =>
    Promise.all(config.satellites.filter((s) => names.includes(s.name)).map(async (s) => (await (await fetch(`${s.url}version`)).text()).trim()));

  const underLoad = (old: TestLesson, next: TestLesson) => loadBetween(frontend, old, next);

  const waitForPhase = async (handle: WorkflowHandle, phase: RolloutStatus['phase']) => {
    for (let i = 0; i < 600; i++) {
      const status = await handle.query<RolloutStatus>('status');
      if (status.phase === phase) return status;
      await sleep(100);
    }
    assert.fail(`the rollout never reached phase ${phase}`);
  };

  test('the first lesson reaches every satellite', { timeout: 120_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'lesson-1'));
    const handle = await startHoldLesson(client, config, lessons[0]!.filed, 'test');
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.deepEqual(await served(), ['lesson-1', 'lesson-1', 'lesson-1', 'lesson-1']);
    await replayAndRecord(handle, 'holdLesson.json');
  });

  test('a new lesson under load: 0 failed requests, every answer old or new, one short mixed window', { timeout: 180_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'lesson-2', lessons[0]));
    const load = underLoad(lessons[0]!, lessons[1]!);
    await sleep(300);
    const handle = await startHoldLesson(client, config, lessons[1]!.filed, 'test');
    const status = (await handle.result()) as RolloutStatus;
    await sleep(300);
    const result: LoadResult = await load.stop();
    console.log(
      `rollout under load: ${result.requests} requests, ${result.failed} failed, ${result.old} old, ${result.new} new, mixed-version window ${result.mixedWindowMs} ms (first new ${JSON.stringify(result.firstNew)}, last old ${JSON.stringify(result.lastOld)})`,
    );
    assert.equal(status.phase, 'done');
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.equal(result.neither, 0, result.failures.join('\n'));
    assert.ok(result.old > 0 && result.new > 0, 'the load saw both lessons');
    assert.ok(
      result.mixedWindowMs < 1_000,
      `mixed-version window ${result.mixedWindowMs} ms (first new ${JSON.stringify(result.firstNew)}, last old ${JSON.stringify(result.lastOld)})`,
    );
    assert.deepEqual(await served(), ['lesson-2', 'lesson-2', 'lesson-2', 'lesson-2']);
    // rsync hard-linked what did not change: it sent little more than the changed bytes.
    const boy = status.groups[0]!.satellites[0]!;
    assert.ok(boy.bytesCopied > 0 && boy.bytesCopied < 10_000, `bytes copied ${boy.bytesCopied}`);
  });

  test(
    'a corrupted copy fails the examination and halts; the other group keeps serving; the Temporal CLI queries it and resumes it',
    { timeout: 180_000 },
    async () => {
      lessons.push(await fileTestLesson(config.reference.lessonsDir, 'lesson-3', lessons[1]));
      fault.corruptNext = 1;
      const load = underLoad(lessons[1]!, lessons[2]!);
      const handle = await startHoldLesson(client, config, lessons[2]!.filed, 'test');
      await waitForPhase(handle, 'halted');
      // What an operator types: the Temporal CLI, with the public names.
      const cli = (...args: string[]) =>
        execa(temporalCliPath(), [
          ...args,
          '--address',
          endpoint.address,
          '--namespace',
          endpoint.namespace,
          '--workflow-id',
          'hold-lesson/lesson-3',
        ]);
      const queried = await cli('workflow', 'query', '--name', 'status', '--output', 'json');
      const halted = JSON.parse(queried.stdout).queryResult[0] as RolloutStatus;
      assert.equal(halted.halted!.group, 'boys');
      assert.deepEqual(halted.halted!.satellites, ['boy-2']);
      assert.match(halted.halted!.reason, /boy-2 failed the examination: file search\/term0\.json: .*manifest/);
      const boys = halted.groups[0]!;
      assert.equal(boys.state, 'halted');
      assert.ok(
        boys.satellites.every((s) => s.lessonServed === undefined),
        'the halted group stays out',
      );
      assert.deepEqual(await served(['girl-1', 'girl-2']), ['lesson-2', 'lesson-2']);
      await sleep(500);
      await cli('workflow', 'signal', '--name', 'resume');
      const status = (await handle.result()) as RolloutStatus;
      await replayAndRecord(handle, 'holdLesson.halt-resume.json');
      const result = await load.stop();
      assert.equal(status.phase, 'done');
      assert.equal(result.failed, 0, result.failures.join('\n'));
      assert.equal(result.neither, 0, result.failures.join('\n'));
      assert.deepEqual(await served(), ['lesson-3', 'lesson-3', 'lesson-3', 'lesson-3']);
    },
  );

  test('abort brings the cluster back to full power on the previous lesson', { timeout: 180_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'lesson-4', lessons[2]));
    fault.corruptNext = 1;
    const load = underLoad(lessons[2]!, lessons[3]!);
    const handle = await startHoldLesson(client, config, lessons[3]!.filed, 'test');
    await waitForPhase(handle, 'halted');
    await handle.signal('abort', 'test: abort instead of fixing');
    const status = (await handle.result()) as RolloutStatus;
    const result = await load.stop();
    await replayAndRecord(handle, 'holdLesson.abort.json');
    assert.equal(status.phase, 'aborted');
    assert.equal(status.serving, 4);
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.equal(result.new, 0, 'no user saw the aborted lesson');
    assert.deepEqual(await served(), ['lesson-3', 'lesson-3', 'lesson-3', 'lesson-3']);
  });

  test('operator updates: skipping a satellite below capacity is refused; retrying it after the fault passes', { timeout: 180_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'lesson-5', lessons.at(-1)));
    fault.corruptNext = 1;
    const handle = await startHoldLesson(client, config, lessons.at(-1)!.filed, 'test');
    await waitForPhase(handle, 'halted');
    // Four satellites in two groups keep at least two serving; skipping boy-2 would leave one while the girls are out.
    const refusedWith = (pattern: RegExp) => (err: unknown) => {
      assert.match(String((err as { cause?: { message?: string } }).cause?.message), pattern);
      return true;
    };
    await assert.rejects(
      handle.executeUpdate('skipSatellite', { args: [{ satellite: 'boy-2' }] }),
      refusedWith(/skipping boy-2 would leave 1 satellites serving while a group is in the classroom, below the minimum of 2/),
    );
    await assert.rejects(
      handle.executeUpdate('retrySatellite', { args: [{ satellite: 'girl-1' }] }),
      refusedWith(/girl-1 is not among the halted ones \(boy-2\)/),
    );
    const retried = await handle.executeUpdate<{ state: string; examination?: { passed: boolean } }, [{ satellite: string }]>('retrySatellite', {
      args: [{ satellite: 'boy-2' }],
    });
    assert.equal(retried.state, 'passed');
    assert.equal(retried.examination?.passed, true);
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.deepEqual(await served(), ['lesson-5', 'lesson-5', 'lesson-5', 'lesson-5']);
  });
});
