/**
 * The save endpoint of a slave's worker, on real parts: the master (its API and
 * database), two slaves, their workers and slaveSync on the real Temporal server. The
 * application on slave A's host saves over HTTP: 32 clients at once, each reading its
 * own write on A as soon as it is answered, every block numbered once and reaching B;
 * no save passes through slaveSync's history. A paused slave refuses saves; a save sent
 * again with its key gets the first answer; bad input and a missing token are refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { saveEndpointToken } from '../src/master/credentials';
import { modelChecksum } from '../src/model/checksum';
import { freeStablePort } from '../src/stack/ports';
import { deployToMaster, LIBRARY_V1, postSave, replicationCluster, waitForStatus } from './helpers/replication';

const V1 = modelChecksum(LIBRARY_V1);

describe("a slave's save endpoint", async () => {
  const port = await freeStablePort();
  const cluster = await replicationCluster('endpoint', ['ep-a', 'ep-b'], {
    edit: (raw) => (raw.slaves[0].saveEndpoint = { port }),
  });
  await deployToMaster(cluster, LIBRARY_V1);
  const a = await cluster.sync('ep-a');
  await cluster.sync('ep-b');
  const token = saveEndpointToken(cluster.config, cluster.config.slaves[0]!);
  const url = `http://127.0.0.1:${port}`;
  const save = (body: unknown, auth: string | null = `Bearer ${token}`) => postSave(port, body, auth);
  const book = (id: number, title = `book ${id}`) => [{ class: 'book', op: 'upsert', values: { id, title, copies: 1 } }];
  const row = async (slave: string, id: number) =>
    (await cluster.slaves[slave]!.db.query<{ title: string }>('SELECT title FROM book WHERE id = $1', [id])).rows[0]?.title;

  test('no token, no save; health needs none', async () => {
    await waitForStatus(a, (s) => s.modelChecksum === V1 && s.state === 'caught-up');
    const refused = await save({ idempotencyKey: 'k-0', changes: book(1) }, null);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'Unauthorized');
    assert.equal((await save({ idempotencyKey: 'k-0', changes: book(1) }, 'Bearer wrong')).status, 401);
    const health = await fetch(`${url}/v1/health`);
    assert.equal(health.status, 200);
  });

  test(
    '32 clients at once: each reads its own write on the slave it saved through, every block once, on both slaves',
    { timeout: 120_000 },
    async () => {
      const clients = 32;
      const perClient = 10;
      const seqs: number[] = [];
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          for (let i = 0; i < perClient; i++) {
            const id = 10_000 + c * 100 + i;
            const answer = await save({ idempotencyKey: `ep-${id}`, changes: book(id), modelChecksum: V1 });
            assert.equal(answer.status, 200, JSON.stringify(answer.body));
            assert.equal(await row('ep-a', id), `book ${id}`, `answered block ${answer.body.seq} before applying it on ep-a`);
            assert.ok(answer.body.highWaterMark >= answer.body.seq);
            seqs.push(answer.body.seq);
          }
        }),
      );
      const sorted = [...seqs].sort((x, y) => x - y);
      assert.equal(new Set(sorted).size, clients * perClient, 'every save its own block');
      assert.equal(sorted.at(-1)! - sorted[0]! + 1, clients * perClient, 'numbered with no gap');
      // The other slave follows too, and each slave holds every block once.
      for (const slave of ['ep-a', 'ep-b']) {
        for (let tries = 0; ; tries++) {
          const { rows } = await cluster.slaves[slave]!.db.query<{ n: string; d: string }>(
            'SELECT count(*) AS n, count(DISTINCT seq) AS d FROM lp_commitblocks WHERE seq BETWEEN $1 AND $2',
            [sorted[0], sorted.at(-1)],
          );
          if (Number(rows[0]!.n) === clients * perClient) {
            assert.equal(rows[0]!.d, rows[0]!.n);
            break;
          }
          assert.ok(tries < 200, `${slave} holds ${rows[0]!.n} of the ${clients * perClient} blocks`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      // The saves went past Temporal: slaveSync's history took no update.
      const history = await a.fetchHistory();
      const updates = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
      assert.equal(updates.length, 0);
    },
  );

  test('sent again with its key: the first answer, nothing saved twice', async () => {
    const first = await save({ idempotencyKey: 'again-1', changes: book(20_001, 'first') });
    const again = await save({ idempotencyKey: 'again-1', changes: book(20_001, 'second') });
    assert.equal(first.status, 200);
    assert.deepEqual([again.status, again.body.seq, again.body.duplicate], [200, first.body.seq, true]);
    assert.equal(await row('ep-a', 20_001), 'first');
  });

  test('bad input is refused with what is wrong, and nothing reaches the master', async () => {
    const before = (await cluster.master.db.query<{ n: string }>('SELECT count(*) AS n FROM lp_commitblocks')).rows[0]!.n;
    const noKey = await save({ changes: book(30_001) });
    assert.deepEqual([noKey.status, noKey.body.error], [422, 'InvalidSave']);
    assert.match(noKey.body.message, /idempotencyKey/);
    const unknownClass = await save({ idempotencyKey: 'bad-1', changes: [{ class: 'socks', op: 'upsert', values: { id: 1 } }] });
    assert.equal(unknownClass.status, 422, JSON.stringify(unknownClass.body));
    assert.match(unknownClass.body.message, /socks/);
    const after = (await cluster.master.db.query<{ n: string }>('SELECT count(*) AS n FROM lp_commitblocks')).rows[0]!.n;
    assert.equal(after, before);
  });

  test('a paused slave refuses saves, saying why; resumed, it takes them again', { timeout: 60_000 }, async () => {
    await a.signal('pause');
    await waitForStatus(a, (s) => s.state === 'paused');
    const refused = await save({ idempotencyKey: 'paused-1', changes: book(40_001) });
    assert.deepEqual([refused.status, refused.body.error], [503, 'SlaveNotFollowing']);
    assert.match(refused.body.message, /not following the master/);
    await a.signal('resume');
    for (let tries = 0; ; tries++) {
      const answer = await save({ idempotencyKey: 'paused-1', changes: book(40_001) });
      if (answer.status === 200) break;
      assert.ok(tries < 100, JSON.stringify(answer.body));
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await row('ep-a', 40_001), 'book 40001');
  });
});
