/**
 * A slave worker killed (SIGKILL) in the middle of applying a backlog: the transaction
 * it had open rolls back, the pass stops heartbeating, slaveSync starts another pass once
 * the worker is back, and the slave ends with every block applied exactly once.
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
    for (let i = 0; (await applied()) === 0; i++) {
      assert.ok(i < 600, 'the slave never started applying');
      await sleep(50);
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
      assert.ok(
        history.events!.some((e) => e.activityTaskTimedOutEventAttributes),
        'the interrupted pass timed out on its heartbeat',
      );
    } finally {
      worker.kill('SIGTERM');
      await worker;
    }
  });
});
