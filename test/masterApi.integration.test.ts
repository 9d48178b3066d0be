/**
 * The master's HTTP API on a real PostgreSQL: per-slave credentials, the origin of a
 * save taken from the credential, long polls answered at commit, and errors a slave can
 * decide by.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { createMasterClient, MasterCallError } from '../src/activities/slave/masterClient';
import { saveOnMaster } from '../src/master/commitblocks';
import { authorizationHeader, slaveCredential } from '../src/master/credentials';
import { modelChecksum } from '../src/model/checksum';
import { parseModel } from '../src/model/modelFile';
import { saveThroughSlave } from '../src/operator/slaveSync';
import { deployToMaster, LIBRARY_V1, replicationCluster } from './helpers/replication';

const V1 = modelChecksum(LIBRARY_V1);

describe("the master's API", async () => {
  // api-a and api-b are only credentials this file calls with; api-c is a slave with its worker and sync, to save through.
  const cluster = await replicationCluster('api', ['api-a', 'api-b', 'api-c'], { workersFor: ['api-c'] });
  await deployToMaster(cluster, LIBRARY_V1);
  await cluster.sync('api-c');
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

  test('a value its attribute does not take is a 422 naming the problem, not an unreachable master', async () => {
    await assert.rejects(
      client('api-a').save(
        { modelChecksum: V1, idempotencyKey: 'bad-value', changes: [{ class: 'book', op: 'upsert', values: { id: 4, copies: 'many' } }] },
        { timeoutMs: 5_000 },
      ),
      (err: MasterCallError) =>
        err.kind === 'InvalidChange' &&
        !err.retryable &&
        /changes\[0\]: attribute "copies" of class book is integer: expected an integer .*found the string "many"/.test(err.message),
    );
  });

  const written = async (id: number, idempotencyKey: string) => ({
    rows: Number((await cluster.master.db.query<{ n: string }>('SELECT count(*) AS n FROM book WHERE id = $1', [id])).rows[0]!.n),
    blocks: Number(
      (await cluster.master.db.query<{ n: string }>('SELECT count(*) AS n FROM lp_commitblocks WHERE idempotency_key = $1', [idempotencyKey]))
        .rows[0]!.n,
    ),
  });

  test('an object for a text attribute is a 422 naming the attribute; nothing is written, and the key stays free', async () => {
    await assert.rejects(
      client('api-a').save(
        { modelChecksum: V1, idempotencyKey: 'wrong-type', changes: [{ class: 'book', op: 'upsert', values: { id: 10, title: { first: 'Ada' } } }] },
        { timeoutMs: 5_000 },
      ),
      (err: MasterCallError) =>
        err.kind === 'InvalidChange' &&
        !err.retryable &&
        err.message.endsWith('changes[0]: attribute "title" of class book is text: expected a string, found an object'),
    );
    assert.deepEqual(await written(10, 'wrong-type'), { rows: 0, blocks: 0 });
    const saved = await client('api-a').save(
      { modelChecksum: V1, idempotencyKey: 'wrong-type', changes: [{ class: 'book', op: 'upsert', values: { id: 10, title: 'Ada' } }] },
      { timeoutMs: 5_000 },
    );
    assert.equal(saved.duplicate, false);
    assert.deepEqual(await written(10, 'wrong-type'), { rows: 1, blocks: 1 });
  });

  test('the same save through a slave gets the same refusal, at once and not retried', async () => {
    const started = Date.now();
    await assert.rejects(
      saveThroughSlave(cluster.client, 'api-c', {
        modelChecksum: V1,
        idempotencyKey: 'wrong-type-via-slave',
        changes: [{ class: 'book', op: 'upsert', values: { id: 12, title: { first: 'Ada' } } }],
      }),
      (err: Error) => {
        const cause = err.cause as (Error & { type?: string; nonRetryable?: boolean }) | undefined;
        assert.equal(cause?.type, 'InvalidChange', `${err.message}: ${cause?.message}`);
        assert.equal(cause?.nonRetryable, true);
        assert.match(cause!.message, /changes\[0\]: attribute "title" of class book is text: expected a string, found an object/);
        return true;
      },
    );
    // The save timeout is 10 s: a refusal retried as if the master were unreachable would take it all.
    assert.ok(Date.now() - started < 8_000, `refused after ${Date.now() - started} ms`);
    assert.deepEqual(await written(12, 'wrong-type-via-slave'), { rows: 0, blocks: 0 });
    const saved = await saveThroughSlave(cluster.client, 'api-c', {
      modelChecksum: V1,
      idempotencyKey: 'right-type-via-slave',
      changes: [{ class: 'book', op: 'upsert', values: { id: 12, title: 'Ada' } }],
    });
    assert.ok(saved.highWaterMark >= saved.seq);
    const { rows } = await cluster.slaves['api-c']!.db.query<{ title: string }>('SELECT title FROM book WHERE id = 12');
    assert.deepEqual(rows, [{ title: 'Ada' }]);
  });

  test('an unknown model checksum is a 404 the slave can name', async () => {
    await assert.rejects(client('api-a').model('f'.repeat(64)), (err: MasterCallError) => err.kind === 'UnknownModel');
  });

  // Last, because it moves the master to a model with a jsonb attribute, which the tests above do not use.
  test('a value nested 100,000 deep is a 422, not a 500, and the master answers the next request', async () => {
    const withNotes = parseModel({
      classes: [
        ...LIBRARY_V1.classes,
        {
          name: 'note',
          key: ['id'],
          attributes: [
            { name: 'id', type: 'integer', nullable: false },
            { name: 'body', type: 'jsonb' },
          ],
        },
      ],
    });
    await deployToMaster(cluster, withNotes);
    // Written by hand: JSON.stringify of so deep a value would overflow this process's stack first.
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const post = (idempotencyKey: string, values: string) =>
      fetch(`${url}/v1/saves`, {
        method: 'POST',
        headers: {
          authorization: authorizationHeader(
            'api-a',
            slaveCredential(
              cluster.config,
              cluster.config.slaves.find((s) => s.name === 'api-a')!,
            ),
          ),
          'content-type': 'application/json',
        },
        body: `{"modelChecksum":"${modelChecksum(withNotes)}","idempotencyKey":"${idempotencyKey}","changes":[{"class":"note","op":"upsert","values":${values}}]}`,
      });
    for (const [key, values, attribute] of [
      ['deep-jsonb', `{"id":1,"body":${deep}}`, /changes\[0\]: attribute "body" of class note is jsonb: nested deeper than \d+ levels/],
      ['deep-key', `{"id":${deep}}`, /changes\[0\]: attribute "id" of class note is integer: expected an integer .*found an array/],
    ] as const) {
      const answer = await post(key, values);
      assert.equal(answer.status, 422, key);
      const body = (await answer.json()) as { error: string; message: string };
      assert.equal(body.error, 'InvalidChange');
      assert.match(body.message, attribute);
    }
    const fine = await post('not-deep', '{"id":2,"body":{"a":[[1]]}}');
    assert.equal(fine.status, 200, await fine.clone().text());
    const { rows } = await cluster.master.db.query<{ id: number; body: unknown }>('SELECT id, body FROM note ORDER BY id');
    assert.deepEqual(rows, [{ id: 2, body: { a: [[1]] } }]);
  });

  test(
    'a stopping master ends its long polls at once, and a connection that never sent a request does not hold it up',
    { timeout: 120_000 },
    async () => {
      const a = client('api-a');
      const { masterSeq } = await a.blocksAfter(0, { limit: 1 });
      // A client that connected and said nothing (a port probe, a pooled socket never used).
      const { port, hostname } = new URL(url);
      const silent = net.connect({ port: Number(port), host: hostname });
      await once(silent, 'connect');
      silent.on('error', () => undefined);
      const polling = a.blocksAfter(masterSeq, { waitMs: 25_000 });
      await new Promise((r) => setTimeout(r, 300));
      const stopAt = Date.now();
      await cluster.master.stop();
      const stoppedIn = Date.now() - stopAt;
      const answer = await polling;
      silent.destroy();
      await cluster.master.start();
      assert.deepEqual(answer.blocks, [], 'the poll was answered, with nothing new');
      assert.ok(stoppedIn < 10_000, `the master took ${stoppedIn} ms to stop`);
    },
  );
});
