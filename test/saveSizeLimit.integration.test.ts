/**
 * How large a save may be, on every path, on real parts (a master, a slave with its
 * worker and slaveSync, the Temporal server): one number, MAX_SAVE_BYTES of changes. A
 * larger save is refused at once with that number and its own size, whichever way it
 * comes, and nothing of it is made; a slave whose caller sent one goes on syncing and
 * saving. (Through a slave a save travels in slaveSync's history, where Temporal refuses
 * a payload over 2 MB; straight to the master the API took up to 64 MiB.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { authorizationHeader, slaveCredential } from '../src/master/credentials';
import { modelChecksum } from '../src/model/checksum';
import * as commitblock from '../src/shared/commitblock';
import { saveThroughSlave } from '../src/operator/slaveSync';
import { deployToMaster, LIBRARY_V1, replicationCluster, waitForStatus } from './helpers/replication';

const V1 = modelChecksum(LIBRARY_V1);
const SLAVE = 'size-a';
/** 3 MiB in one value: over Temporal's 2 MB payload limit, and over the one number. */
const HUGE = 'x'.repeat(3 << 20);

describe('the size of a save: one limit on every path', async () => {
  const cluster = await replicationCluster('size', [SLAVE]);
  await deployToMaster(cluster, LIBRARY_V1);
  const handle = await cluster.sync(SLAVE);
  await waitForStatus(handle, (s) => s.modelChecksum === V1);
  const timeoutMs = cluster.config.timings.saveTimeout;
  const book = (id: number, title: string) => [{ class: 'book', op: 'upsert' as const, values: { id, title, copies: 1 } }];
  const blocks = async () => Number((await cluster.master.db.query<{ n: string }>('SELECT count(*) AS n FROM lp_commitblocks')).rows[0]!.n);

  test('through a slave: refused at once naming the limit; the slave saves the next one as before', { timeout: 120_000 }, async () => {
    const before = await blocks();
    const started = performance.now();
    await assert.rejects(
      saveThroughSlave(cluster.client, SLAVE, { idempotencyKey: 'huge-through-slave', changes: book(1, HUGE) }, timeoutMs),
      (err: Error) => /at most 1 MiB of changes/.test(err.message) && /3\.0 MiB/.test(err.message),
    );
    assert.ok(performance.now() - started < timeoutMs, 'refused before anything was sent');
    assert.equal(await blocks(), before, 'nothing made');
    const next = await saveThroughSlave(cluster.client, SLAVE, { idempotencyKey: 'small-after-huge', changes: book(2, 'small') }, timeoutMs);
    assert.equal(next.duplicate, false);
    assert.ok(next.highWaterMark >= next.seq);
  });

  test(
    'an update over the limit sent to slaveSync by another client: refused by its validator, and the run goes on',
    { timeout: 120_000 },
    async () => {
      const before = await blocks();
      // 1.5 MiB: over the limit, under Temporal's own 2 MB (a refusal carries the request back, so above that Temporal fails the task itself).
      const large = book(4, HUGE.slice(0, 3 << 19));
      await assert.rejects(handle.executeUpdate('save', { args: [{ idempotencyKey: 'large-update', changes: large }] }), (err: Error) =>
        /at most 1 MiB of changes/.test((err.cause as Error | undefined)?.message ?? err.message),
      );
      assert.equal(await blocks(), before, 'nothing made');
      const next = await saveThroughSlave(cluster.client, SLAVE, { idempotencyKey: 'small-after-update', changes: book(5, 'small') }, timeoutMs);
      assert.equal(next.duplicate, false);
    },
  );

  test('straight to the master: 413 naming the limit, nothing made', { timeout: 60_000 }, async () => {
    const before = await blocks();
    const credential = slaveCredential(
      cluster.config,
      cluster.config.slaves.find((s) => s.name === SLAVE)!,
    );
    const response = await fetch(`${cluster.master.service().url}/v1/saves`, {
      method: 'POST',
      headers: { authorization: authorizationHeader(SLAVE, credential), 'content-type': 'application/json' },
      body: JSON.stringify({ modelChecksum: V1, idempotencyKey: 'huge-direct', changes: book(3, HUGE.slice(0, 2 << 20)) }),
    });
    const answer = (await response.json()) as { error: string; message: string };
    assert.equal(response.status, 413, JSON.stringify(answer).slice(0, 300));
    assert.equal(answer.error, 'SaveTooLarge');
    assert.match(answer.message, /at most 1 MiB of changes/);
    assert.equal(await blocks(), before, 'nothing made');
  });

  test('the limit is one number, below what Temporal takes in one payload', () => {
    assert.equal(commitblock.MAX_SAVE_BYTES, 1 << 20);
    assert.ok(commitblock.MAX_SAVE_BYTES < 2_000_000);
  });
});
