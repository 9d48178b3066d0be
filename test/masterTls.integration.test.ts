/**
 * The master's API over HTTPS, on real parts (the master service, slave workers, slaveSync
 * on the Temporal server): with `master.api.tls` the master serves TLS with its own
 * certificate and every slave verifies it against the configured CA before it sends its
 * credential or takes a block or a model. A master the slave cannot verify is refused as
 * such (MasterUntrusted), never retried as if it were only unreachable: slaveSync halts
 * and says why.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createMasterClient, MasterCallError } from '../src/activities/slave/masterClient';
import { slaveCredential } from '../src/master/credentials';
import { MasterConfigError, startMasterService } from '../src/master/service';
import { createLogger } from '../src/logging';
import { modelChecksum } from '../src/model/checksum';
import { saveThroughSlave } from '../src/operator/slaveSync';
import { masterApiUrl } from '../src/stack/endpoints';
import { freeStablePort } from '../src/stack/ports';
import { deployToMaster, LIBRARY_V1, replicationCluster, waitForStatus } from './helpers/replication';
import { onTeardown } from './helpers/stack';
import { makeCertificates, pem } from './helpers/tls';
import { runWorkersForTest } from './helpers/workers';

const V1 = modelChecksum(LIBRARY_V1);
const TRUSTING = 'tls-a';
const DOUBTING = 'tls-b';

describe("the master's API over HTTPS", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-tls-'));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  const ours = await makeCertificates(dir, 'ours', ['IP:127.0.0.1']);
  const strangers = await makeCertificates(dir, 'strangers', ['IP:127.0.0.1']);
  // The file the config names: the slaves' CA. tls-b's worker starts later, after it changed.
  const caFile = path.join(dir, 'slaves-ca.crt');
  copyFileSync(ours.caFile, caFile);
  const cluster = await replicationCluster('tls', [TRUSTING, DOUBTING], {
    workersFor: [TRUSTING],
    edit: (raw) => (raw.master.api.tls = { certFile: ours.certFile, keyFile: ours.keyFile, caFile }),
  });
  const master = cluster.config.master!;
  const url = masterApiUrl(cluster.config);
  await deployToMaster(cluster, LIBRARY_V1);
  const book = (id: number, title: string) => [{ class: 'book', op: 'upsert' as const, values: { id, title, copies: 1 } }];
  const client = (ca: string | undefined) =>
    createMasterClient({ url, slave: TRUSTING, credential: slaveCredential(cluster.config, cluster.config.slaves[0]!), ca });

  test(
    'the master serves HTTPS, and a slave pulls and saves through it, verifying the master by the configured CA',
    { timeout: 120_000 },
    async () => {
      assert.equal(url, `https://127.0.0.1:${master.api.port}`);
      assert.equal(cluster.master.service().url, url);
      const handle = await cluster.sync(TRUSTING);
      await waitForStatus(handle, (s) => s.modelChecksum === V1 && s.state === 'caught-up');
      const saved = await saveThroughSlave(
        cluster.client,
        TRUSTING,
        { idempotencyKey: 'tls-first', changes: book(1, 'Over TLS') },
        cluster.config.timings.saveTimeout,
      );
      assert.equal(saved.duplicate, false);
      const { rows } = await cluster.slaves[TRUSTING]!.db.query<{ title: string }>('SELECT title FROM book WHERE id = 1');
      assert.deepEqual(rows, [{ title: 'Over TLS' }], 'the save is on the slave once answered');
      const answer = await client(pem(ours.caFile)).blocksAfter(0, { limit: 10 });
      assert.equal(answer.blocks.at(-1)?.seq, saved.seq);
    },
  );

  test('the HTTPS port gives nothing to a plain HTTP request', { timeout: 30_000 }, async () => {
    await assert.rejects(fetch(`http://127.0.0.1:${master.api.port}/v1/health`, { signal: AbortSignal.timeout(10_000) }));
  });

  test('a client that does not trust the master is refused as MasterUntrusted, not retried as unreachable', { timeout: 30_000 }, async () => {
    for (const [what, ca] of [
      ['another CA', pem(strangers.caFile)],
      ["the system's CAs", undefined],
    ] as const) {
      await assert.rejects(client(ca).blocksAfter(0, { limit: 1 }), (err: unknown) => {
        assert.ok(err instanceof MasterCallError, `${what}: ${String(err)}`);
        assert.equal(err.kind, 'MasterUntrusted', `${what}: ${err.message}`);
        assert.equal(err.retryable, false);
        assert.match(err.message, /could not verify the master at https:\/\/127\.0\.0\.1:\d+/);
        assert.match(err.message, /master\.api\.tls\.caFile/);
        return true;
      });
    }
  });

  test(
    'a slave worker whose CA did not sign the master halts its slaveSync with MasterUntrusted, naming the cause',
    { timeout: 120_000 },
    async () => {
      copyFileSync(strangers.caFile, caFile);
      await runWorkersForTest(cluster.config, [{ role: 'slave', name: DOUBTING }]);
      const handle = await cluster.sync(DOUBTING);
      const halted = await waitForStatus(handle, (s) => s.state === 'halted');
      assert.equal(halted.halt?.kind, 'MasterUntrusted');
      assert.match(halted.halt!.reason, /could not verify the master/);
      assert.equal(halted.appliedBlocks, 0, 'nothing was taken from a master it could not verify');
    },
  );

  test('a master whose key file cannot be read does not start, naming the field', { timeout: 30_000 }, async () => {
    const broken = {
      ...cluster.config,
      master: {
        ...master,
        api: { ...master.api, port: await freeStablePort(), tls: { ...master.api.tls!, keyFile: path.join(dir, 'missing.key') } },
      },
    };
    await assert.rejects(
      startMasterService(broken, createLogger('test-tls', { pretty: false })),
      (err: Error) => err instanceof MasterConfigError && /master\.api\.tls\.keyFile/.test(err.message) && /missing\.key/.test(err.message),
    );
  });
});
