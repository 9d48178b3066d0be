/**
 * slaveSync when things go wrong, on real parts: the master's API stopped (saves through
 * a slave fail in time, reads go on, status says since when, everything saved meanwhile
 * arrives when it is back), a slave made from a master backup (pg_dump, pg_restore)
 * catching up from the backup's blocks, and retention: the master prunes only what every
 * slave has applied, and a slave behind what the master holds is told to rebuild.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pgDump, pgRestore } from '../src/db/pgTools';
import { pruneCommitblocks, saveOnMaster } from '../src/master/commitblocks';
import { modelChecksum } from '../src/model/checksum';
import { saveThroughSlave } from '../src/operator/slaveSync';
import type { SlaveSyncStatus } from '../src/shared/slaveSync';
import { alertReceiver } from './helpers/alertReceiver';
import { contentChecksums, deployToMaster, LIBRARY_V1, replicationCluster, waitForStatus } from './helpers/replication';
import { onTeardown } from './helpers/stack';
import { runWorkersForTest } from './helpers/workers';

const V1 = modelChecksum(LIBRARY_V1);
const book = (id: number, title: string) => [{ class: 'book', op: 'upsert' as const, values: { id, title, copies: 1 } }];

describe('slaveSync through a master outage, a backup and retention', async () => {
  // out-c is configured (and registered with the master) but has no worker until it is made from a backup.
  // Operators are told, through a local webhook, when a master stays away and when a slave halts.
  const receiver = await alertReceiver();
  const cluster = await replicationCluster('outage', ['out-a', 'out-b', 'out-c'], {
    workersFor: ['out-a', 'out-b'],
    edit: (raw) => (raw.alerts = { webhook: receiver.url, slaveUnreachableAfter: '2s', lagAboveBlocks: 1_000_000, lagAboveSeconds: '1h' }),
  });
  const alertsOf = (kind: string, workflowId?: string) =>
    receiver.received.filter((r) => r.alert.kind === kind && (!workflowId || r.alert.workflowId === workflowId)).map((r) => r.alert);
  const { config } = cluster;
  await deployToMaster(cluster, LIBRARY_V1);
  const a = await cluster.sync('out-a');
  const b = await cluster.sync('out-b');
  const dumps = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-dumps-'));
  onTeardown(() => rmSync(dumps, { recursive: true, force: true }));
  let key = 0;
  const saveDirect = (id: number, title: string) =>
    saveOnMaster(cluster.master.db, { modelChecksum: V1, origin: 'master', idempotencyKey: `direct-${key++}`, changes: book(id, title) });
  const masterSeq = async () =>
    Number((await cluster.master.db.query<{ n: string }>('SELECT coalesce(max(seq), 0) AS n FROM lp_commitblocks')).rows[0]!.n);

  for (let i = 1; i <= 10; i++) await saveDirect(i, `before ${i}`);
  const earlyDump = path.join(dumps, 'early.dump');
  await pgDump(cluster.master.url, earlyDump, 'the master database');

  test(
    'master stopped: saves through a slave fail within the save timeout, reads go on, status says since when; back: nothing lost',
    { timeout: 120_000 },
    async () => {
      await waitForStatus(a, (s) => s.highWaterMark === 10);
      await cluster.master.stop();
      const started = Date.now();
      await assert.rejects(
        saveThroughSlave(cluster.client, 'out-a', { idempotencyKey: 'during-outage', changes: book(500, 'lost?') }),
        (err: Error) => {
          const text = `${err.message} ${(err.cause as Error | undefined)?.message ?? ''}`;
          return /the save through slave out-a failed/.test(text) && /unreachable|no answer/.test(text) && /Reads on this slave go on/.test(text);
        },
      );
      const elapsed = Date.now() - started;
      assert.ok(
        elapsed <= config.timings.saveTimeout + 2_000,
        `the save failed after ${elapsed} ms, the timeout is ${config.timings.saveTimeout} ms`,
      );
      // Reads on the slave go on.
      const rows = await cluster.slaves['out-a']!.db.query('SELECT id FROM book ORDER BY id');
      assert.equal(rows.rowCount, 10);
      const down = await waitForStatus(a, (s) => s.masterUnreachableSince !== null && s.state === 'master-unreachable');
      assert.match(down.lastError ?? '', /the master at http:\/\/127\.0\.0\.1:\d+ is unreachable/);
      const since = Date.parse(down.masterUnreachableSince!);
      assert.ok(since >= started - 5_000 && since <= Date.now(), `unreachable since ${down.masterUnreachableSince}`);

      // Past the threshold, each slave's operators hear of it once.
      await receiver.waitFor(2);
      const unreachable = alertsOf('slave-master-unreachable');
      assert.deepEqual(unreachable.map((alert) => alert.workflowId).sort(), ['slave-sync/out-a', 'slave-sync/out-b']);
      assert.match(unreachable[0]!.reason, /the master at http:\/\/127\.0\.0\.1:\d+ is unreachable/);

      // Meanwhile the master's own users go on saving.
      for (let i = 11; i <= 20; i++) await saveDirect(i, `during ${i}`);
      await cluster.master.start();
      const total = await masterSeq();
      for (const [name, handle] of [
        ['out-a', a],
        ['out-b', b],
      ] as const) {
        const back = await waitForStatus(handle, (s) => s.highWaterMark === total, 60_000, name);
        assert.equal(back.masterUnreachableSince, null);
        assert.equal(back.lastError, null);
        assert.deepEqual(await contentChecksums(cluster.slaves[name]!.db, LIBRARY_V1), await contentChecksums(cluster.master.db, LIBRARY_V1));
      }
      assert.equal(alertsOf('slave-master-unreachable').length, 2, 'one alert per slave for the whole outage');
      // The failed save can be made again with the same key once the master is back.
      const again = await saveThroughSlave(cluster.client, 'out-a', { idempotencyKey: 'during-outage', changes: book(500, 'saved after all') });
      assert.equal(again.seq, total + 1);
    },
  );

  test('retention: nothing is pruned while a configured slave has not applied it; then only what all have applied', async () => {
    const service = cluster.master.service();
    // out-c is configured but has never pulled: it counts as having applied nothing.
    assert.deepEqual(await service.prune(), { pruned: 0, upTo: 0 });
    assert.equal((await cluster.master.db.query('SELECT 1 FROM lp_commitblocks WHERE seq = 1')).rowCount, 1);
  });

  test("a slave made from a master backup catches up from the backup's high-water mark", { timeout: 120_000 }, async () => {
    const dump = path.join(dumps, 'now.dump');
    const atBackup = await masterSeq();
    await pgDump(cluster.master.url, dump, 'the master database');
    await pgRestore(cluster.slaves['out-c']!.url, dump, 'slave out-c');
    for (let i = 30; i < 40; i++) await saveDirect(i, `after the backup ${i}`);
    await runWorkersForTest(config, [{ role: 'slave', name: 'out-c' }]);
    const c = await cluster.sync('out-c');
    const total = await masterSeq();
    const status = await waitForStatus(c, (s) => s.highWaterMark === total, 60_000, 'out-c');
    assert.equal(status.appliedBlocks, total - atBackup, 'out-c applied only the blocks after its backup');
    assert.deepEqual(await contentChecksums(cluster.slaves['out-c']!.db, LIBRARY_V1), await contentChecksums(cluster.master.db, LIBRARY_V1));
  });

  test(
    'retention prunes what every slave applied; a slave restored from an older backup is told to rebuild, and resumes after it is',
    { timeout: 120_000 },
    async () => {
      const total = await masterSeq();
      for (const handle of [a, b]) await waitForStatus(handle, (s) => s.highWaterMark === total);
      // Progress is what the slaves asked for last: let every slave ask once more after the mark.
      await saveDirect(100, 'nudge');
      for (const handle of [a, b]) await waitForStatus(handle, (s) => s.highWaterMark === total + 1);
      const c = cluster.client.workflow.getHandle('slave-sync/out-c');
      await waitForStatus(c, (s) => s.highWaterMark === total + 1);
      // The master learns progress from the next pulls: wait until it has every slave at the mark.
      for (let i = 0; ; i++) {
        const { rows } = await cluster.master.db.query<{ low: string }>('SELECT min(applied_seq) AS low FROM lp_slave_progress');
        if (Number(rows[0]!.low) >= total + 1) break;
        assert.ok(i < 200, `the master never saw every slave at block ${total + 1}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // Blocks younger than keepBlocksFor stay, whatever the slaves applied.
      assert.equal((await pruneCommitblocks(cluster.master.db, ['out-a', 'out-b', 'out-c'], 3_600_000)).pruned, 0);
      const pruned = await cluster.master.service().prune();
      assert.ok(pruned.upTo >= total, `pruned up to ${pruned.upTo}`);
      assert.ok(pruned.pruned > 0);
      const held = await cluster.master.db.query<{ low: string; high: string }>('SELECT min(seq) AS low, max(seq) AS high FROM lp_commitblocks');
      assert.equal(Number(held.rows[0]!.high), total + 1, 'the newest block is kept');

      // out-c's database is restored from the early backup (block 10): the master no longer holds what it needs.
      await c.signal('pause');
      await waitForStatus(c, (s) => s.state === 'paused');
      await pgRestore(cluster.slaves['out-c']!.url, earlyDump, 'slave out-c');
      await c.signal('resume');
      const halted = await waitForStatus(c, (s: SlaveSyncStatus) => s.state === 'halted', 30_000, 'out-c');
      assert.equal(halted.halt?.kind, 'BehindRetention');
      assert.match(
        halted.halt!.reason,
        /slave out-c has applied up to block 10, but the master holds blocks only from \d+ on .*rebuild this slave from a recent master backup/,
      );
      assert.match(halted.halt!.resumeWith, /--workflow-id slave-sync\/out-c --name resume/);
      // Nothing was applied on top of the old data meanwhile.
      assert.equal(Number((await cluster.slaves['out-c']!.db.query<{ n: string }>('SELECT max(seq) AS n FROM lp_commitblocks')).rows[0]!.n), 10);
      // Saves through a halted slave are refused up front.
      await assert.rejects(saveThroughSlave(cluster.client, 'out-c', { idempotencyKey: 'halted', changes: book(7, 'x') }), (err: Error) =>
        /slave out-c is halted .*saves through it are refused/.test((err.cause as Error).message),
      );

      // The operator rebuilds it from a fresh backup and resumes.
      const fresh = path.join(dumps, 'fresh.dump');
      await pgDump(cluster.master.url, fresh, 'the master database');
      await pgRestore(cluster.slaves['out-c']!.url, fresh, 'slave out-c');
      await saveDirect(101, 'after the rebuild');
      await c.signal('resume');
      const latest = await masterSeq();
      await waitForStatus(c, (s) => s.highWaterMark === latest && s.halt === null, 30_000, 'out-c');
      assert.deepEqual(await contentChecksums(cluster.slaves['out-c']!.db, LIBRARY_V1), await contentChecksums(cluster.master.db, LIBRARY_V1));
    },
  );
  test('a master restored from an older backup that took other saves since: the slaves halt with Diverged', { timeout: 120_000 }, async () => {
    const slaveMark = await masterSeq();
    await waitForStatus(a, (s) => s.highWaterMark === slaveMark);
    // Paused while the master is rolled back: a pull in between would meet a master behind the slave
    // (AheadOfMaster, also a halt, but not the case this test is about).
    await a.signal('pause');
    await waitForStatus(a, (s) => s.state === 'paused');
    await cluster.master.stop();
    await pgRestore(cluster.master.url, earlyDump, 'the master database');
    await cluster.master.start();
    // The restored master numbers new saves from 11 on: block numbers the slave already has, made otherwise.
    while ((await masterSeq()) < slaveMark + 2) await saveDirect(5_000 + (await masterSeq()), 'after the restore');
    await a.signal('resume');
    const halted = await waitForStatus(a, (s) => s.state === 'halted', 30_000, 'out-a');
    assert.equal(halted.halt?.kind, 'Diverged');
    // The alert goes out beside the loop, so it may arrive a moment after the halt shows in status.
    const alert = await receiver.waitForAlert((a) => a.kind === 'slave-halted' && a.workflowId === 'slave-sync/out-a');
    assert.match(alert.summary, /slave out-a stopped syncing: Diverged/);
    assert.equal(alert.resumeCommand, halted.halt!.resumeWith);
    assert.match(
      halted.halt!.reason,
      new RegExp(`slave out-a's block ${slaveMark} .* is not the master's block ${slaveMark}.*rebuild this slave from a backup of the master`),
    );
    const { rows } = await cluster.slaves['out-a']!.db.query<{ n: string }>('SELECT max(seq) AS n FROM lp_commitblocks');
    assert.equal(Number(rows[0]!.n), slaveMark, 'nothing applied on top');
  });
});
