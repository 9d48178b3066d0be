/**
 * holdLesson without load balancer control (`loadBalancer.kind: none`), with the real
 * parts: the satellites still sit behind a real HAProxy with health checks, but
 * lessonplan has no access to its runtime API. The rollout relies on the health checks
 * and the configured wait, as in the seed: the rollout completes, and old and new answers
 * overlap for a while (the seed's "two minutes", here about the health-check wait).
 *
 * Failed requests must stay under 1%, not at 0: under this test's heavy load (4 clients,
 * 2 ms pause) 5 of 17,388 requests got a 503 in one run here and none in the next, while
 * with load balancer control the same load gets none (holdLesson.integration). Known,
 * and open: see the issue notes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyByAnswers, startLoad } from '../src/cluster/loadGenerator';
import type { ClusterConfig } from '../src/config/schema';
import { startHoldLesson } from '../src/operator/rollout';
import type { RolloutStatus } from '../src/shared/rollout';
import { testCluster } from './helpers/cluster';
import { fileTestLesson } from './helpers/lessons';
import { clientForTest, runSatelliteWorkers, runWorkersForTest } from './helpers/workers';

describe('holdLesson without load balancer control, behind a real HAProxy', async () => {
  // The local cluster starts HAProxy from the controlled config; the workers get one without control.
  const { config: withHaproxy } = await testCluster('rollout-nolb');
  const frontend = `http://127.0.0.1:${withHaproxy.loadBalancer.kind === 'haproxy' ? withHaproxy.loadBalancer.frontendPort : 0}`;
  const config: ClusterConfig = { ...withHaproxy, loadBalancer: { kind: 'none', healthCheckWait: 1_500 } };
  await runWorkersForTest(config, [{ role: 'orchestration' }, { role: 'reference' }]);
  await runSatelliteWorkers(config);
  const { client } = await clientForTest(config);
  const served = () => Promise.all(config.satellites.map(async (s) => (await (await fetch(`${s.url}version`)).text()).trim()));

  test('a new lesson under load: the rollout completes on health checks and waits; old and new answers overlap', { timeout: 180_000 }, async () => {
    const first = await fileTestLesson(config.reference.lessonsDir, 'lesson-1');
    assert.equal(((await (await startHoldLesson(client, config, first.filed, 'test')).result()) as RolloutStatus).phase, 'done');
    assert.deepEqual(await served(), ['lesson-1', 'lesson-1', 'lesson-1', 'lesson-1']);

    const second = await fileTestLesson(config.reference.lessonsDir, 'lesson-2', first);
    const load = startLoad({
      baseUrl: frontend,
      paths: [...first.answers.keys()].filter((p) => p !== '/records/bulk.json'),
      concurrency: 4,
      maxRequests: 200_000,
      maxDurationMs: 120_000,
      pauseMs: 2,
      classify: classifyByAnswers(first.answers, second.answers),
    });
    const handle = await startHoldLesson(client, config, second.filed, 'test');
    const status = (await handle.result()) as RolloutStatus;
    const result = await load.stop();
    console.log(
      `rollout without LB control: ${result.requests} requests, ${result.failed} failed, ${result.old} old, ${result.new} new, mixed-version window ${result.mixedWindowMs} ms`,
    );
    assert.equal(status.phase, 'done');
    // Every answer that came back is one lesson's or the other's, never a mix.
    assert.equal(result.neither, result.failed, result.failures.join('\n'));
    assert.ok(result.failed < result.requests / 100, `${result.failed} of ${result.requests} requests failed: ${result.failures.join('; ')}`);
    assert.deepEqual(await served(), ['lesson-2', 'lesson-2', 'lesson-2', 'lesson-2']);
    // Without control the boys serve the new lesson while the girls still serve the old one.
    assert.ok(result.mixedWindowMs > 500, `mixed-version window ${result.mixedWindowMs} ms`);
  });
});
