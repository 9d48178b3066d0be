/**
 * slaveSync on real parts: a master (its HTTP API and database) and two slaves on the
 * suite's PostgreSQL, the slave workers and slaveSync on the real Temporal server.
 * 32 writers save at once through both slaves (their save endpoints and their `save`
 * updates) and straight to the master, the model changes mid-stream, and every database must end with the master's exact content, every slave
 * having applied every block exactly once; Prometheus counts the saves and shows the lag.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { saveOnMaster } from '../src/master/commitblocks';
import { DestructiveModelChange } from '../src/model/deploy';
import { modelChecksum } from '../src/model/checksum';
import { saveEndpointToken } from '../src/master/credentials';
import { saveThroughSlave } from '../src/operator/slaveSync';
import { freeStablePort } from '../src/stack/ports';
import { contentChecksums, deployToMaster, LIBRARY_V1, LIBRARY_V2, postSave, replicationCluster, waitForStatus } from './helpers/replication';
import { replayAndRecord } from './helpers/histories';
import { metricsAddress, scrape, valueOf } from './helpers/metrics';

const V1 = modelChecksum(LIBRARY_V1);
const V2 = modelChecksum(LIBRARY_V2);

/** How a writer saves: through a slave's save endpoint or its `save` update, or on the master itself. */
type Path = { via: 'endpoint' | 'update'; slave: string } | { via: 'master'; slave?: undefined };

describe('slaveSync with a real master, two slaves and concurrent saves', async () => {
  const metrics = await metricsAddress();
  const endpoints = { 'sync-a': await freeStablePort(), 'sync-b': await freeStablePort() } as Record<string, number>;
  const cluster = await replicationCluster('sync', ['sync-a', 'sync-b'], {
    edit: (raw) => {
      raw.metrics = { bindAddress: metrics };
      for (const slave of raw.slaves) slave.saveEndpoint = { port: endpoints[slave.name] };
    },
  });
  /** A save as the application on the slave's host makes it: HTTP to the slave worker's endpoint. */
  const saveAtEndpoint = async (slave: string, body: { changes: unknown[]; idempotencyKey: string; modelChecksum: string }) => {
    const token = saveEndpointToken(
      cluster.config,
      cluster.config.slaves.find((s) => s.name === slave)!,
    );
    const answer = await postSave(endpoints[slave]!, body, `Bearer ${token}`);
    assert.equal(answer.status, 200, `${slave}'s endpoint: ${JSON.stringify(answer.body)}`);
    return answer.body as { seq: number; highWaterMark: number };
  };
  await deployToMaster(cluster, LIBRARY_V1);
  const a = await cluster.sync('sync-a');
  const b = await cluster.sync('sync-b');

  const masterSeq = async () =>
    Number((await cluster.master.db.query<{ n: string }>('SELECT coalesce(max(seq), 0) AS n FROM lp_commitblocks')).rows[0]!.n);

  test("new slaves take the master's model before any block exists", async () => {
    for (const handle of [a, b]) {
      const status = await waitForStatus(handle, (s) => s.modelChecksum === V1);
      assert.equal(status.highWaterMark, 0);
    }
  });

  test(
    '32 writers at once over every path (the save endpoints and updates of both slaves, the master), a model change mid-stream: all databases converge',
    { timeout: 180_000 },
    async () => {
      const perWriter = 10;
      /** One writer: saves books with ids of its own range, under `checksum`, by one path. */
      const writer = async (path: Path, base: number, checksum: string, extra: Record<string, unknown> = {}) => {
        for (let i = 0; i < perWriter; i++) {
          const id = base + i;
          const changes = [{ class: 'book', op: 'upsert' as const, values: { id, title: `${path.via} book ${id}`, copies: i, ...extra } }];
          const idempotencyKey = `${path.via}-${path.slave ?? 'master'}-${id}`;
          if (!path.slave) {
            await saveOnMaster(cluster.master.db, { modelChecksum: checksum, changes, origin: 'master', idempotencyKey });
            continue;
          }
          const result =
            path.via === 'update'
              ? await saveThroughSlave(cluster.client, path.slave, { changes, idempotencyKey, modelChecksum: checksum })
              : await saveAtEndpoint(path.slave, { changes, idempotencyKey, modelChecksum: checksum });
          // Read-your-writes: when the save answers, the slave it went through has the row.
          const { rows } = await cluster.slaves[path.slave]!.db.query<{ title: string }>('SELECT title FROM book WHERE id = $1', [id]);
          assert.equal(rows[0]?.title, `${path.via} book ${id}`, `${path.slave} answered save ${result.seq} (${path.via}) before applying it`);
          assert.ok(result.highWaterMark >= result.seq);
        }
      };
      /** 32 writers: ten at each slave's endpoint, four through each slave's update (Temporal takes ten at once), four on the master. */
      const paths: Path[] = [
        ...Array.from({ length: 10 }, () => ({ via: 'endpoint' as const, slave: 'sync-a' })),
        ...Array.from({ length: 10 }, () => ({ via: 'endpoint' as const, slave: 'sync-b' })),
        ...Array.from({ length: 4 }, () => ({ via: 'update' as const, slave: 'sync-a' })),
        ...Array.from({ length: 4 }, () => ({ via: 'update' as const, slave: 'sync-b' })),
        ...Array.from({ length: 4 }, () => ({ via: 'master' as const })),
      ];
      await Promise.all(paths.map((p, w) => writer(p, 1_000 + w * 100, V1)));

      // The model changes on the master while the slaves run: they evolve on their own.
      const deployed = await deployToMaster(cluster, LIBRARY_V2);
      assert.equal(deployed.checksum, V2);
      assert.ok(deployed.changes.every((c) => !c.destructive));
      await Promise.all([
        ...paths.map((p, w) => writer(p, 5_000 + w * 100, V2, { isbn: p.via })),
        saveOnMaster(cluster.master.db, {
          modelChecksum: V2,
          origin: 'master',
          idempotencyKey: 'loan-1',
          changes: [
            { class: 'loan', op: 'upsert', values: { book_id: 1_000, reader: 'ada', until: '2026-12-24T00:00:00Z' } },
            { class: 'book', op: 'delete', key: { id: 1_001 } },
          ],
        }),
      ]);

      const total = await masterSeq();
      assert.equal(total, paths.length * perWriter * 2 + 1);
      const expected = await contentChecksums(cluster.master.db, LIBRARY_V2);
      for (const [name, handle] of [
        ['sync-a', a],
        ['sync-b', b],
      ] as const) {
        const status = await waitForStatus(handle, (s) => s.highWaterMark === total && s.lagBlocks === 0, 60_000, name);
        assert.equal(status.modelChecksum, V2, `${name} evolved to the new model`);
        assert.equal(status.evolvedModels, 2, `${name} evolved twice (none -> v1 -> v2)`);
        assert.equal(status.masterUnreachableSince, null);
        const db = cluster.slaves[name]!.db;
        assert.deepEqual(await contentChecksums(db, LIBRARY_V2), expected, `${name} has the master's exact content`);
        const seqs = await db.query<{ n: string; distinct_n: string; low: string; high: string }>(
          'SELECT count(*) AS n, count(DISTINCT seq) AS distinct_n, min(seq) AS low, max(seq) AS high FROM lp_commitblocks',
        );
        assert.deepEqual(
          seqs.rows[0],
          { n: String(total), distinct_n: String(total), low: '1', high: String(total) },
          `${name} applied every block once`,
        );
        const columns = await db.query<{ data_type: string }>(
          "SELECT data_type FROM information_schema.columns WHERE table_name = 'book' AND column_name = 'copies'",
        );
        assert.equal(columns.rows[0]?.data_type, 'bigint', `${name} widened book.copies`);
      }

      // The master counted each save through a slave once; each slave's lag gauge reads caught up.
      const samples = await scrape(metrics);
      for (const name of ['sync-a', 'sync-b']) {
        const through = paths.filter((p) => p.slave === name).length;
        assert.equal(valueOf(samples, 'lessonplan_saves_total', { origin: name }), 2 * through * perWriter, `saves through ${name}`);
        assert.equal(valueOf(samples, 'lessonplan_slave_lag_blocks', { slave: name }), 0, `${name}'s lag in blocks`);
        assert.equal(valueOf(samples, 'lessonplan_slave_lag_seconds', { slave: name }), 0, `${name}'s lag in seconds`);
      }
    },
  );

  test('a destructive model change is refused on the master with the change named; nothing changes', async () => {
    const dropped = {
      classes: LIBRARY_V2.classes.map((c) => (c.name === 'book' ? { ...c, attributes: c.attributes.filter((x) => x.name !== 'isbn') } : c)),
    };
    await assert.rejects(
      deployToMaster(cluster, dropped),
      (err: Error) => err instanceof DestructiveModelChange && /drop attribute book\.isbn \(its values would be lost\)/.test(err.message),
    );
    const current = await cluster.master.db.query<{ checksum: string }>('SELECT checksum FROM lp_models WHERE current');
    assert.equal(current.rows[0]!.checksum, V2);
  });

  test('a save under a model the master left is refused clearly, and the slave keeps syncing', async () => {
    await assert.rejects(
      saveThroughSlave(cluster.client, 'sync-a', {
        idempotencyKey: 'stale',
        modelChecksum: V1,
        changes: [{ class: 'book', op: 'upsert', values: { id: 9, title: 'x' } }],
      }),
      (err: Error) => /reload the model and save again/.test(`${err.message} ${(err.cause as Error | undefined)?.message}`),
    );
    const status = await a.query('status');
    assert.equal((status as { halt: unknown }).halt, null);
  });

  test('the history replays', async () => {
    await a.signal('pause');
    await waitForStatus(a, (s) => s.state === 'paused');
    const desc = await a.describe();
    assert.equal(desc.status.name, 'RUNNING');
    await a.terminate('recording the history');
    await replayAndRecord(a, 'slaveSync.json');
  });
});
