/**
 * A slave worker killed (SIGKILL) in the middle of applying a backlog, inside its one
 * long-running follow of the master: the batch it held rolls back, the follow stops
 * heartbeating, slaveSync starts another once the worker is back, and the slave ends with every block applied exactly once.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { openDatabase } from '../src/db/database';
import { saveOnMaster } from '../src/master/commitblocks';
import { modelChecksum } from '../src/model/checksum';
import { migrateReplica } from '../src/model/deploy';
import { contentChecksums, deployToMaster, LIBRARY_V1, replicationCluster, sleep, waitForStatus } from './helpers/replication';
import { onTeardown } from './helpers/stack';

const ROOT = path.resolve(import.meta.dirname, '..');
const V1 = modelChecksum(LIBRARY_V1);

describe('a slave worker killed while it applies', async () => {
  // Small batches: many apply transactions, so the kill lands while some are still to come.
  const cluster = await replicationCluster('crash', ['crash-a'], { workersFor: [], edit: (raw) => (raw.slaves[0].batchSize = 100) });
  await deployToMaster(cluster, LIBRARY_V1);
  const slaveDb = cluster.slaves['crash-a']!.db;
  await migrateReplica(slaveDb);
  const startWorker = () =>
    execa('node', ['--import', 'tsx', 'src/workers/slave.ts', '--config', cluster.configFile, '--name', 'crash-a'], {
      cwd: ROOT,
      reject: false,
      env: { LESSONPLAN_LOG_FORMAT: 'json', LESSONPLAN_LOG_LEVEL: 'warn' },
    });
  const applied = async () => Number((await slaveDb.query<{ n: string }>('SELECT count(*) AS n FROM lp_commitblocks')).rows[0]!.n);

  test('after the restart nothing is applied twice or missed', { timeout: 180_000 }, async () => {
    // A backlog of blocks of several rows each, saved by eight writers at once.
    const blocks = 4_000;
    const writers = openDatabase(cluster.master.url, { max: 8 });
    onTeardown(() => writers.close());
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let n = next++; n < blocks; n = next++) {
          const changes = Array.from({ length: 5 }, (_, r) => ({
            class: 'book',
            op: 'upsert' as const,
            values: { id: (n % 1_500) * 5 + r, title: `block ${n} row ${r}`, copies: n },
          }));
          await saveOnMaster(writers, { modelChecksum: V1, origin: 'master', idempotencyKey: `backlog-${n}`, changes });
        }
      }),
    );

    let worker = startWorker();
    const handle = await cluster.sync('crash-a');
    // Killed once the follow has committed a few batches of 100, while it works on the next.
    for (let i = 0; (await applied()) < 200; i++) {
      assert.ok(i < 1_500, 'the slave never started applying');
      await sleep(20);
    }
    worker.kill('SIGKILL');
    await worker;
    const atKill = await applied();
    assert.ok(atKill > 0 && atKill < blocks, `the worker was killed mid-backlog (${atKill} of ${blocks} applied)`);
    // What a killed apply left: whole blocks only, numbered without a gap.
    const partial = await slaveDb.query<{ n: string; high: string }>('SELECT count(*) AS n, max(seq) AS high FROM lp_commitblocks');
    assert.equal(partial.rows[0]!.n, partial.rows[0]!.high);

    worker = startWorker();
    try {
      const status = await waitForStatus(handle, (s) => s.highWaterMark === blocks, 120_000, 'crash-a');
      assert.equal(status.lagBlocks, 0);
      const seqs = await slaveDb.query<{ n: string; distinct_n: string; low: string; high: string }>(
        'SELECT count(*) AS n, count(DISTINCT seq) AS distinct_n, min(seq) AS low, max(seq) AS high FROM lp_commitblocks',
      );
      assert.deepEqual(seqs.rows[0], { n: String(blocks), distinct_n: String(blocks), low: '1', high: String(blocks) });
      assert.deepEqual(await contentChecksums(slaveDb, LIBRARY_V1), await contentChecksums(cluster.master.db, LIBRARY_V1));
      // The pass the kill interrupted failed (no heartbeat), and a later pass finished the work.
      const history = await handle.fetchHistory();
      const events = history.events!;
      const timedOut = events.find((e) => e.activityTaskTimedOutEventAttributes);
      assert.ok(timedOut, 'the interrupted pass timed out on its heartbeat');
      // It was the long-running follow that the kill cut off, not a short pass between two.
      const scheduledId = String(timedOut.activityTaskTimedOutEventAttributes!.scheduledEventId);
      const scheduled = events.find((e) => String(e.eventId) === scheduledId);
      assert.equal(scheduled?.activityTaskScheduledEventAttributes?.activityType?.name, 'followMaster');
    } finally {
      worker.kill('SIGTERM');
      await worker;
    }
  });
  test(
    'a graceful stop (SIGTERM) ends the running follow at its next long poll: it reports, and the worker exits without waiting out the report interval',
    { timeout: 120_000 },
    async () => {
      const handle = await cluster.sync('crash-a');
      const worker = startWorker();
      await waitForStatus(handle, (s) => s.state === 'caught-up', 60_000, 'crash-a');
      // The status may still be the last worker's: wait until this worker runs the follow (its stop handler is
      // installed by then; a SIGTERM before it would kill the process outright, on a slow machine).
      for (let i = 0; ; i++) {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        if (pending.some((a) => a.activityType?.name === 'followMaster' && a.lastWorkerIdentity?.endsWith(`@${worker.pid}`))) break;
        assert.ok(i < 600, 'the new worker never ran the follow');
        await sleep(100);
      }
      // A follow is running now, and would report only after REPORT_EVERY_MS (30 s) on its own.
      await sleep(2_000);
      const before = (await handle.fetchHistory()).events!;
      const running = before.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'followMaster').at(-1)!;
      const stopAt = Date.now();
      worker.kill('SIGTERM');
      const ended = await worker;
      const stoppedIn = Date.now() - stopAt;
      assert.equal(ended.exitCode, 0, ended.stderr);
      assert.ok(stoppedIn < 15_000, `the worker took ${stoppedIn} ms to stop: it waited for the follow's report`);
      // That follow ended with its report (completed), not abandoned to its heartbeat timeout or cut off by the grace time.
      const outcomeOf = (events: typeof before) =>
        events.find((e) =>
          [
            e.activityTaskCompletedEventAttributes,
            e.activityTaskFailedEventAttributes,
            e.activityTaskTimedOutEventAttributes,
            e.activityTaskCanceledEventAttributes,
          ].some((o) => o && String(o.scheduledEventId) === String(running.eventId)),
        );
      let outcome = outcomeOf((await handle.fetchHistory()).events!);
      for (let i = 0; !outcome && i < 100; i++) {
        await sleep(100);
        outcome = outcomeOf((await handle.fetchHistory()).events!);
      }
      assert.ok(
        outcome?.activityTaskCompletedEventAttributes,
        `the follow running at the stop completed with its report: ${JSON.stringify(outcome)}`,
      );
    },
  );
});
