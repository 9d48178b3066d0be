/**
 * A slave away from its master, on real parts: the master's API, a slave worker with its
 * save endpoint, slaveSync on the real Temporal server, and between the slave and the
 * master a real latency proxy (Toxiproxy) that the slave reaches the master through
 * (`slaves[].masterAddress`). Saves cross the delayed link and are still answered only
 * once applied on the slave; cutting the link fails saves at once with the reason, while
 * reads of the slave's own database go on; restoring it lets saves through again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { saveEndpointToken } from '../src/master/credentials';
import { modelChecksum } from '../src/model/checksum';
import { freeStablePort } from '../src/stack/ports';
import { startLatencyProxy } from './helpers/latencyProxy';
import { deployToMaster, LIBRARY_V1, postSave, replicationCluster, waitForStatus } from './helpers/replication';
import { onTeardown } from './helpers/stack';

const V1 = modelChecksum(LIBRARY_V1);
/** Added by the proxy in each direction: a round trip of 20 ms. */
const ONE_WAY_MS = 10;

describe('a slave 20 ms from its master, behind a real latency proxy', async () => {
  const endpointPort = await freeStablePort();
  const proxyPort = await freeStablePort(new Set([endpointPort]));
  let masterPort = 0;
  const cluster = await replicationCluster('far', ['far-a'], {
    edit: (raw) => {
      masterPort = raw.master.api.port;
      raw.slaves[0].masterAddress = `127.0.0.1:${proxyPort}`;
      raw.slaves[0].saveEndpoint = { port: endpointPort };
    },
  });
  const proxy = await startLatencyProxy(`127.0.0.1:${masterPort}`, proxyPort);
  onTeardown(() => proxy.stop());
  await proxy.delay(ONE_WAY_MS);
  await deployToMaster(cluster, LIBRARY_V1);
  const handle = await cluster.sync('far-a');
  const token = `Bearer ${saveEndpointToken(cluster.config, cluster.config.slaves[0]!)}`;
  const slaveDb = cluster.slaves['far-a']!.db;
  const book = (id: number) => [{ class: 'book', op: 'upsert', values: { id, title: `far book ${id}`, copies: 1 } }];
  const title = async (id: number) => (await slaveDb.query<{ title: string }>('SELECT title FROM book WHERE id = $1', [id])).rows[0]?.title;

  test('saves cross the delayed link and are answered once applied on the slave, never before a round trip', { timeout: 60_000 }, async () => {
    await waitForStatus(handle, (s) => s.modelChecksum === V1 && s.state === 'caught-up');
    for (let id = 1; id <= 20; id++) {
      const started = Date.now();
      const answer = await postSave(endpointPort, { idempotencyKey: `far-${id}`, changes: book(id), modelChecksum: V1 }, token);
      const took = Date.now() - started;
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(await title(id), `far book ${id}`, `block ${answer.body.seq} answered before it was applied on far-a`);
      assert.ok(took >= 2 * ONE_WAY_MS, `save ${id} took ${took} ms: it cannot have crossed the proxy`);
    }
  });

  test(
    'the link cut: saves fail at once saying the master is unreachable, reads go on; restored: saves go through',
    { timeout: 120_000 },
    async () => {
      await proxy.setEnabled(false);
      const refused = await postSave(endpointPort, { idempotencyKey: 'far-cut', changes: book(100), modelChecksum: V1 }, token);
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      // Refused before the master is tried when the follow has already failed on the cut; else by the master's silence.
      assert.ok(['SlaveNotFollowing', 'MasterUnreachable'].includes(refused.body.error), refused.body.error);
      assert.match(refused.body.message, /unreachable/);
      // The slave's own data is read as before; nothing of it waits for the master.
      assert.equal(await title(20), 'far book 20');
      await waitForStatus(handle, (s) => s.state === 'master-unreachable' && s.masterUnreachableSince !== null);

      await proxy.setEnabled(true);
      await waitForStatus(handle, (s) => s.state === 'caught-up' && s.masterUnreachableSince === null, 90_000);
      const again = await postSave(endpointPort, { idempotencyKey: 'far-cut', changes: book(100), modelChecksum: V1 }, token);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(await title(100), 'far book 100');
    },
  );
});
