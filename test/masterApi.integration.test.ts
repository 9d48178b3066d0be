/**
 * The master's HTTP API on a real PostgreSQL: per-slave credentials, the origin of a
 * save taken from the credential, long polls answered at commit, and errors a slave can
 * decide by.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMasterClient, MasterCallError } from '../src/activities/slave/masterClient';
import { saveOnMaster } from '../src/master/commitblocks';
import { slaveCredential } from '../src/master/credentials';
import { modelChecksum } from '../src/model/checksum';
import { deployToMaster, LIBRARY_V1, replicationCluster } from './helpers/replication';

const V1 = modelChecksum(LIBRARY_V1);

describe("the master's API", async () => {
  const cluster = await replicationCluster('api', ['api-a', 'api-b'], { workersFor: [] });
  await deployToMaster(cluster, LIBRARY_V1);
  const url = cluster.master.service().url;
  const client = (
    slave: string,
    credential = slaveCredential(
      cluster.config,
      cluster.config.slaves.find((s) => s.name === slave)!,
    ),
  ) => createMasterClient({ url, slave, credential });

  test('no credential, a wrong one, or an unknown slave: 401; health needs none', async () => {
    assert.equal((await fetch(`${url}/v1/blocks?after=0`)).status, 401);
    await assert.rejects(client('api-a', 'not-the-credential').blocksAfter(0, {}), (err: MasterCallError) => err.kind === 'Unauthorized');
    await assert.rejects(client('stranger', 'x').blocksAfter(0, {}), (err: MasterCallError) => err.kind === 'Unauthorized' && !err.retryable);
    assert.deepEqual(await (await fetch(`${url}/v1/health`)).json(), { ok: true });
  });

  test("a save's origin is the slave that authenticated; a bad save is refused naming the field", async () => {
    const saved = await client('api-b').save(
      { modelChecksum: V1, idempotencyKey: 'origin-check', changes: [{ class: 'book', op: 'upsert', values: { id: 1, title: 'one' } }] },
      { timeoutMs: 5_000 },
    );
    const { rows } = await cluster.master.db.query<{ origin: string }>('SELECT origin FROM lp_commitblocks WHERE seq = $1', [saved.seq]);
    assert.equal(rows[0]!.origin, 'api-b');
    await assert.rejects(
      client('api-b').save({ modelChecksum: 'abc', idempotencyKey: 'k', changes: [] }, { timeoutMs: 5_000 }),
      (err: MasterCallError) =>
        err.kind === 'InvalidSave' && /modelChecksum: expected a model checksum/.test(err.message) && /at least one change/.test(err.message),
    );
  });

  test('a long poll answers at the commit, not at its deadline', async () => {
    const a = client('api-a');
    const { masterSeq } = await a.blocksAfter(0, { limit: 1 });
    const started = Date.now();
    const polling = a.blocksAfter(masterSeq, { waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    await saveOnMaster(cluster.master.db, {
      modelChecksum: V1,
      origin: 'master',
      idempotencyKey: 'wake-up',
      changes: [{ class: 'book', op: 'upsert', values: { id: 2, title: 'two' } }],
    });
    const answer = await polling;
    const took = Date.now() - started;
    assert.equal(answer.blocks.length, 1);
    assert.equal(answer.blocks[0]!.idempotencyKey, 'wake-up');
    assert.ok(took < 5_000, `the poll answered after ${took} ms`);
  });

  test("idempotency keys are each slave's own: the same key from two slaves is two saves", async () => {
    const save = (slave: string) =>
      client(slave).save(
        { modelChecksum: V1, idempotencyKey: 'shared-key', changes: [{ class: 'book', op: 'upsert', values: { id: 3, title: slave } }] },
        { timeoutMs: 5_000 },
      );
    const fromA = await save('api-a');
    const fromB = await save('api-b');
    assert.equal(fromA.duplicate, false);
    assert.equal(fromB.duplicate, false);
    assert.notEqual(fromA.seq, fromB.seq);
    assert.deepEqual(await save('api-a'), { seq: fromA.seq, duplicate: true });
  });

  test('values the database refuses are a 422 naming the problem, not an unreachable master', async () => {
    await assert.rejects(
      client('api-a').save(
        { modelChecksum: V1, idempotencyKey: 'bad-value', changes: [{ class: 'book', op: 'upsert', values: { id: 4, copies: 'many' } }] },
        { timeoutMs: 5_000 },
      ),
      (err: MasterCallError) => err.kind === 'InvalidChange' && !err.retryable && /invalid input syntax for type integer/.test(err.message),
    );
  });

  test('an unknown model checksum is a 404 the slave can name', async () => {
    await assert.rejects(client('api-a').model('f'.repeat(64)), (err: MasterCallError) => err.kind === 'UnknownModel');
  });
});
