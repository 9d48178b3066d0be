/**
 * The whole-cluster switch with the real parts: eight Apache satellites in four groups
 * behind a real HAProxy, each with its examination instance as its stand-in (a
 * `<name>-exam` server of the backend, in maintenance until a rollout needs it), rsync,
 * the Temporal dev server, and a load generator asking HAProxy the whole time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { showServers } from '../src/activities/loadBalancer/runtimeApi';
import { apacheOf, apachePid } from '../src/activities/satellite/apache';
import { startHoldLesson } from '../src/operator/rollout';
import type { RolloutStatus } from '../src/shared/rollout';
import { testCluster } from './helpers/cluster';
import { fileTestLesson, loadBetween, type TestLesson } from './helpers/lessons';
import { clientForTest, runSatelliteWorkers, runWorkersForTest } from './helpers/workers';

describe('the whole-cluster switch on a real cluster (Apache, HAProxy, rsync)', async () => {
  const { config } = await testCluster(
    'whole-cluster',
    (raw) => {
      raw.groups = { ...raw.groups, copy: 'while-serving', consistency: 'whole-cluster', minServingGroups: 3 };
    },
    { a: 2, b: 2, c: 2, d: 2 },
  );
  await runWorkersForTest(config, [{ role: 'orchestration' }, { role: 'reference' }]);
  await runSatelliteWorkers(config, (_name, acts) => acts);
  const { client } = await clientForTest(config);
  const lb = config.loadBalancer.kind === 'haproxy' ? config.loadBalancer : undefined;
  const frontend = `http://127.0.0.1:${lb!.frontendPort}`;
  const lessons: TestLesson[] = [];
  const served = () => Promise.all(config.satellites.map(async (s) => (await (await fetch(`${s.url}version`)).text()).trim()));
  const standIns = async () => (await showServers(lb!.runtimeApi, lb!.backend)).filter((s) => s.name.endsWith('-exam'));

  test('the first lesson reaches every satellite; the stand-ins end in maintenance, stopped', { timeout: 180_000 }, async () => {
    lessons.push(await fileTestLesson(config.reference.lessonsDir, 'wc-1'));
    const status = (await (await startHoldLesson(client, config, lessons[0]!.filed, 'test')).result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.deepEqual(await served(), Array(8).fill('wc-1'));
    const ins = await standIns();
    assert.equal(ins.length, 8);
    assert.ok(
      ins.every((s) => s.status === 'MAINT'),
      JSON.stringify(ins),
    );
    for (const s of config.satellites) assert.equal(apachePid(apacheOf(s), 'exam'), undefined, `${s.name}'s stand-in stopped`);
  });

  test(
    'under load: one change from the old lesson to the new, 0 failed requests, every satellite serving throughout',
    { timeout: 180_000 },
    async () => {
      lessons.push(await fileTestLesson(config.reference.lessonsDir, 'wc-2', lessons[0]));
      const load = loadBetween(frontend, lessons[0]!, lessons[1]!);
      await new Promise((r) => setTimeout(r, 300));
      const status = (await (await startHoldLesson(client, config, lessons[1]!.filed, 'test')).result()) as RolloutStatus;
      await new Promise((r) => setTimeout(r, 300));
      const result = await load.stop();
      console.log(
        `whole-cluster switch, 8 satellites in 4 groups: ${result.requests} requests, ${result.failed} failed, mixed window from outside ${result.mixedWindowMs} ms; capacity ${JSON.stringify(status.capacity)}`,
      );
      assert.equal(status.phase, 'done');
      assert.equal(result.failed, 0, result.failures.join('\n'));
      assert.equal(result.neither, 0, result.failures.join('\n'));
      assert.ok(result.old > 0 && result.new > 0);
      // Old answers after the first new one come only from requests that were open at the switch.
      assert.ok(result.mixedWindowMs < 1_000, `mixed window ${result.mixedWindowMs} ms`);
      assert.equal(status.mixedWindowMs, undefined, 'the rollout never had two lessons in service');
      assert.equal(status.capacity?.lowestServing, 8);
      assert.equal(status.capacity?.satelliteSecondsOut, 0);
      assert.deepEqual(await served(), Array(8).fill('wc-2'));
      assert.ok((await standIns()).every((s) => s.status === 'MAINT'));
    },
  );
});
