/**
 * More than two groups on the real parts (issue 13, items 1 and 7): eight Apache
 * satellites behind a real HAProxy, rsync copies, the Temporal dev server, a load
 * generator asking HAProxy the whole time. With one lesson at a time, users get the old
 * lesson or the new one for four groups and for three; a cancel from the Temporal CLI
 * in the middle of a rollout puts every satellite back in service on the previous
 * lesson, with no failed request.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { type LoadResult } from '../src/cluster/loadGenerator';
import { holdLessonInput } from '../src/operator/rollout';
import { ORCHESTRATION_TASK_QUEUE, workflowIds } from '../src/shared/names';
import type { RolloutGroup, RolloutStatus } from '../src/shared/rollout';
import { temporalCliPath } from '../src/stack/toolPaths';
import { isServing, showServers } from '../src/activities/loadBalancer/runtimeApi';
import { holdLesson, statusQuery } from '../src/workflows/holdLesson';
import { testCluster } from './helpers/cluster';
import { fileTestLesson, loadBetween, type TestLesson } from './helpers/lessons';
import { clientForTest, runSatelliteWorkers, runWorkersForTest } from './helpers/workers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('holdLesson with three and four groups on a real cluster (Apache, HAProxy, rsync)', async () => {
  // Four groups of two; two groups' worth (four satellites) keep serving: the switch comes after the second group.
  const { config } = await testCluster('groups', (raw) => (raw.groups.minServingGroups = 2), { a: 2, b: 2, c: 2, d: 2 });
  await runWorkersForTest(config, [{ role: 'orchestration' }, { role: 'reference' }]);
  await runSatelliteWorkers(config);
  const { client, endpoint } = await clientForTest(config);
  const frontend = `http://127.0.0.1:${config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0}`;
  const lessons: TestLesson[] = [];
  const everyone = config.satellites.map((s) => s.name);

  const served = () => Promise.all(config.satellites.map(async (s) => (await (await fetch(`${s.url}version`)).text()).trim()));

  const underLoad = (old: TestLesson, next: TestLesson) => loadBetween(frontend, old, next);

  /** Starts the rollout of `lesson` with the config's plan, or with other groups of the same satellites. */
  const rollOut = (lesson: TestLesson, groups?: RolloutGroup[]): Promise<WorkflowHandle<typeof holdLesson>> => {
    const input = holdLessonInput(config, lesson.filed, 'test');
    return client.workflow.start(holdLesson, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: workflowIds.holdLesson(lesson.filed.lessonId),
      args: [groups ? { ...input, groups } : input],
    });
  };

  const report = (what: string, r: LoadResult) =>
    console.log(
      `${what}: ${r.requests} requests, ${r.failed} failed, ${r.old} old, ${r.new} new, mixed-version window ${r.mixedWindowMs} ms (first new ${JSON.stringify(r.firstNew)}, last old ${JSON.stringify(r.lastOld)})`,
    );

  test('the first lesson reaches all eight satellites', { timeout: 180_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'groups-1'));
    const status = await (await rollOut(lessons[0]!)).result();
    assert.equal(status.phase, 'done');
    assert.deepEqual(
      await served(),
      everyone.map(() => 'groups-1'),
    );
  });

  test('four groups under load, one lesson at a time: 0 failed requests and no mixed window', { timeout: 240_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'groups-2', lessons[0]));
    const load = underLoad(lessons[0]!, lessons[1]!);
    await sleep(300);
    const status = await (await rollOut(lessons[1]!)).result();
    await sleep(300);
    const result = await load.stop();
    report('four groups', result);
    assert.equal(status.phase, 'done');
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.equal(result.neither, 0, result.failures.join('\n'));
    assert.ok(result.old > 0 && result.new > 0, 'the load saw both lessons');
    assert.ok(result.mixedWindowMs < 1_000, `mixed-version window ${result.mixedWindowMs} ms`);
    assert.equal(status.mixedWindowMs, undefined, 'the rollout saw no mixed window either');
    assert.deepEqual(
      await served(),
      everyone.map(() => 'groups-2'),
    );
  });

  test('three groups under load, one lesson at a time: 0 failed requests and no mixed window', { timeout: 240_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'groups-3', lessons[1]));
    const three = [
      { name: 'a', satellites: ['a-1', 'a-2'] },
      { name: 'b', satellites: ['b-1', 'b-2'] },
      { name: 'cd', satellites: ['c-1', 'c-2', 'd-1', 'd-2'] },
    ];
    const load = underLoad(lessons[1]!, lessons[2]!);
    await sleep(300);
    const status = await (await rollOut(lessons[2]!, three)).result();
    await sleep(300);
    const result = await load.stop();
    report('three groups', result);
    assert.equal(status.phase, 'done');
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.equal(result.neither, 0, result.failures.join('\n'));
    assert.ok(result.mixedWindowMs < 1_000, `mixed-version window ${result.mixedWindowMs} ms`);
    assert.deepEqual(
      await served(),
      everyone.map(() => 'groups-3'),
    );
  });

  test(
    'a cancel from the Temporal CLI mid-rollout under load: every satellite back in service on the previous lesson, 0 failed requests',
    { timeout: 240_000 },
    async () => {
      lessons.push(await fileTestLesson(config.reference.lessonsDir, 'groups-4', lessons[2]));
      const load = underLoad(lessons[2]!, lessons[3]!);
      await sleep(300);
      const handle = await rollOut(lessons[3]!);
      // Cancel while group a waits ready on the new lesson and group b is in the classroom.
      for (let i = 0; i < 600; i++) {
        const s = await handle.query(statusQuery);
        if (s.groups[0]!.state === 'held-ready' && s.groups[1]!.state === 'in-classroom') break;
        await sleep(20);
      }
      await execa(temporalCliPath(), [
        'workflow',
        'cancel',
        '--address',
        endpoint.address,
        '--namespace',
        endpoint.namespace,
        '--workflow-id',
        handle.workflowId,
      ]);
      await assert.rejects(handle.result(), /cancel/i);
      const status = (await handle.query(statusQuery)) as RolloutStatus;
      await sleep(500);
      const result = await load.stop();
      report('cancelled rollout', result);
      assert.equal(status.phase, 'aborted');
      assert.equal(status.serving, 8);
      assert.equal(result.failed, 0, result.failures.join('\n'));
      assert.equal(result.new, 0, 'no user saw the cancelled lesson');
      assert.deepEqual(
        await served(),
        everyone.map(() => 'groups-3'),
      );
      // Every satellite is back in HAProxy, taking users.
      const lb = config.loadBalancer.kind === 'haproxy' ? config.loadBalancer : undefined;
      const stats = await showServers(lb!.runtimeApi, lb!.backend);
      assert.deepEqual(
        stats
          .filter(isServing)
          .map((s) => s.name)
          .sort(),
        [...everyone].sort(),
        JSON.stringify(stats),
      );
    },
  );
});
