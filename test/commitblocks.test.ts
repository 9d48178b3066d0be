/**
 * The master's commitblocks on a real PostgreSQL: many saves committing at once, while
 * a reader pulls after its high-water mark the way a slave does. The reader must never
 * see a gap (a block numbered below one it already read, committed later), and must
 * end with every block exactly once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openDatabase } from '../src/db/database';
import { applyBlocks } from '../src/activities/slave/applyBlocks';
import {
  answerBlocksAfter,
  blocksAfter,
  MAX_ANSWER_BYTES,
  ModelMismatch,
  PROGRESS_EVERY_MS,
  pruneCommitblocks,
  recordSlaveProgress,
  saveOnMaster,
  slaveProgressRecorder,
} from '../src/master/commitblocks';
import { deployModel, migrateReplica } from '../src/model/deploy';
import { compareReplicas } from '../src/model/replicaDigest';
import { parseModel } from '../src/model/modelFile';
import { onTeardown, freshDatabase, testStack } from './helpers/stack';

const model = parseModel({
  classes: [
    {
      name: 'account',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'owner', type: 'text' },
        { name: 'balance', type: 'numeric' },
      ],
    },
  ],
});

describe('master commitblocks', async () => {
  const stack = await testStack();
  const { url, db } = await freshDatabase(stack, 'master');
  await migrateReplica(db);
  const { checksum } = await deployModel(db, model);
  // A pool as large as the number of concurrent savers, so the saves really overlap.
  const master = openDatabase(url, { max: 16, applicationName: 'test-master' });
  onTeardown(() => master.close());

  test('concurrent saves: a reader following the high-water mark never sees a gap and gets every block once', { timeout: 120_000 }, async () => {
    const savers = 12;
    const perSaver = 40;
    let saving = true;
    const seen: number[] = [];
    const reader = (async () => {
      let hwm = 0;
      for (;;) {
        const done = !saving;
        const batch = await blocksAfter(db, hwm, 50);
        for (const block of batch) {
          assert.equal(block.seq, hwm + 1, `after ${hwm} the reader got ${block.seq}: a block was skipped`);
          hwm = block.seq;
          seen.push(block.seq);
        }
        if (done && batch.length === 0) return;
      }
    })();
    await Promise.all(
      Array.from({ length: savers }, async (_, s) => {
        for (let i = 0; i < perSaver; i++) {
          await saveOnMaster(master, {
            modelChecksum: checksum,
            origin: `saver-${s}`,
            idempotencyKey: `saver-${s}-${i}`,
            changes: [{ class: 'account', op: 'upsert', values: { id: s * 1000 + i, owner: `owner ${s}`, balance: i } }],
          });
        }
      }),
    );
    saving = false;
    await reader;
    assert.equal(seen.length, savers * perSaver);
    assert.deepEqual(
      seen,
      Array.from({ length: savers * perSaver }, (_, i) => i + 1),
    );
    const rows = await db.query<{ n: string }>('SELECT count(*) AS n FROM account');
    assert.equal(Number(rows.rows[0]!.n), savers * perSaver, 'every save wrote its row with its block');
  });

  test('the same idempotency key saved twice, even at once, gives one block and the first number', async () => {
    const request = {
      modelChecksum: checksum,
      origin: 'slave-1',
      idempotencyKey: 'once-only',
      changes: [{ class: 'account', op: 'upsert' as const, values: { id: 999_999, owner: 'once', balance: 1 } }],
    };
    const [a, b] = await Promise.all([saveOnMaster(master, request), saveOnMaster(master, request)]);
    assert.equal(a.seq, b.seq);
    assert.equal([a.duplicate, b.duplicate].filter(Boolean).length, 1);
    const again = await saveOnMaster(master, request);
    assert.deepEqual(again, { seq: a.seq, duplicate: true });
    const blocks = await db.query("SELECT 1 FROM lp_commitblocks WHERE idempotency_key = 'once-only'");
    assert.equal(blocks.rowCount, 1);
  });

  test('a save under another model, or with a change the model does not know, is refused and writes nothing', async () => {
    const before = await blocksAfter(db, 0, 10_000);
    await assert.rejects(
      saveOnMaster(master, { modelChecksum: 'f'.repeat(64), origin: 'x', idempotencyKey: 'stale', changes: [] }),
      (err: Error) => err instanceof ModelMismatch && /reload the model/.test(err.message),
    );
    await assert.rejects(
      saveOnMaster(master, {
        modelChecksum: checksum,
        origin: 'x',
        idempotencyKey: 'bad-attribute',
        changes: [{ class: 'account', op: 'upsert', values: { id: 1, colour: 'red' } }],
      }),
      /"colour" is not an attribute of class account/,
    );
    assert.equal((await blocksAfter(db, 0, 10_000)).length, before.length);
  });

  /** The numbering lock held from outside, so that saves pile up behind it in a known order. */
  const holdNumbering = async () => {
    const holder = openDatabase(url, { max: 1, applicationName: 'test-lock-holder' });
    await holder.query("SELECT pg_advisory_lock(hashtext('lessonplan.commitblock-order'))");
    const waiting = async (n: number) => {
      for (let i = 0; i < 500; i++) {
        const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
        if (Number(rows[0]!.n) >= n) return;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.fail(`${n} saves never waited for the numbering lock`);
    };
    const release = async () => {
      await holder.query("SELECT pg_advisory_unlock(hashtext('lessonplan.commitblock-order'))");
      await holder.close();
    };
    return { waiting, release };
  };

  /** A slave made from scratch that applies every block of the master, compared with it table by table. */
  const replayedDiffers = async () => {
    const slave = await freshDatabase(stack, 'replay');
    await migrateReplica(slave.db);
    await deployModel(slave.db, model);
    await applyBlocks(slave.db, await blocksAfter(db, 0, 100_000));
    return compareReplicas(db, slave.db, model);
  };

  /**
   * 32 saves that pile up behind the numbering lock and share one transaction, the
   * eleventh of them bad: it must be refused alone, the rest numbered with no gap.
   */
  const groupWithOneBad = async (idBase: number, bad: Record<string, unknown>, refusal: RegExp) => {
    const start = (await blocksAfter(db, 0, 1_000_000)).at(-1)?.seq ?? 0;
    const lock = await holdNumbering();
    // The first save waits at the lock; the 31 after it pile up behind it in this process.
    const first = saveOnMaster(master, {
      modelChecksum: checksum,
      origin: `group-${idBase}`,
      idempotencyKey: 'group-0',
      changes: [{ class: 'account', op: 'upsert', values: { id: idBase, owner: 'g', balance: 0 } }],
    });
    await lock.waiting(1);
    const rest = Array.from({ length: 31 }, (_, i) =>
      saveOnMaster(master, {
        modelChecksum: checksum,
        origin: `group-${idBase}`,
        idempotencyKey: `group-${i + 1}`,
        changes: [{ class: 'account', op: 'upsert', values: i === 9 ? { id: idBase + 10, ...bad } : { id: idBase + 1 + i, owner: 'g', balance: i } }],
      }).then(
        (answer) => ({ answer }),
        (error: Error) => ({ error }),
      ),
    );
    // Time for the 31 to pass their own look for an earlier save and join the queue.
    await new Promise((r) => setTimeout(r, 500));
    await lock.release();
    const answers = [{ answer: await first }, ...(await Promise.all(rest))];
    const refused = answers.filter((a) => 'error' in a);
    assert.equal(refused.length, 1);
    assert.match(String((refused[0] as { error: Error }).error.message), refusal);
    const numbers = answers.flatMap((a) => ('answer' in a ? [a.answer.seq] : [])).sort((x, y) => x - y);
    assert.deepEqual(
      numbers,
      Array.from({ length: 31 }, (_, i) => start + 1 + i),
      'numbered with no gap where the bad one was',
    );
    // committed_at is the transaction's start (now()): one value per transaction (xmin would be each savepoint's own).
    const { rows } = await db.query<{ transactions: string; accounts: string }>(
      `SELECT count(DISTINCT committed_at) AS transactions, (SELECT count(*) FROM account WHERE id BETWEEN $2 AND $2 + 31) AS accounts
       FROM lp_commitblocks WHERE seq > $1`,
      [start, idBase],
    );
    assert.equal(Number(rows[0]!.accounts), 31, 'every save but the refused one wrote its row');
    assert.equal(Number(rows[0]!.transactions), 2, 'the first save alone, then the 30 that waited behind it in one transaction');
    assert.deepEqual(await replayedDiffers(), []);
  };

  test(
    'saves that arrive together share a transaction (group commit): a bad one is refused alone, the rest numbered with no gap',
    { timeout: 60_000 },
    () => groupWithOneBad(600_000, { colour: 'red' }, /"colour" is not an attribute of class account/),
  );

  test(
    'a save only the database refuses, among saves applied together, is refused alone with its reason and the rest numbered with no gap',
    { timeout: 60_000 },
    // A decimal string the value check takes, and PostgreSQL's numeric cannot hold.
    () => groupWithOneBad(610_000, { owner: 'g', balance: '1e200000' }, /numeric/),
  );

  test(
    'conflicting saves on one key: the blocks apply in the order the master applied them (a delete racing an uncommitted insert)',
    { timeout: 60_000 },
    async () => {
      const key = { id: 424_242 };
      const lock = await holdNumbering();
      // A inserts the row and then waits to be numbered; B deletes that row meanwhile.
      const a = saveOnMaster(master, {
        modelChecksum: checksum,
        origin: 'writer-a',
        idempotencyKey: 'race-insert',
        changes: [{ class: 'account', op: 'upsert', values: { ...key, owner: 'A', balance: 1 } }],
      });
      await lock.waiting(1);
      // From another process (its own pool): saves of one process would share A's transaction instead of waiting at the lock.
      const other = openDatabase(url, { max: 2, applicationName: 'test-master-2' });
      onTeardown(() => other.close());
      const b = saveOnMaster(other, {
        modelChecksum: checksum,
        origin: 'writer-b',
        idempotencyKey: 'race-delete',
        changes: [{ class: 'account', op: 'delete', key }],
      });
      await lock.waiting(2);
      await lock.release();
      const [first, second] = await Promise.all([a, b]);
      assert.ok(first.seq < second.seq, `the insert was numbered ${first.seq}, the delete ${second.seq}`);
      const differences = await replayedDiffers();
      assert.deepEqual(differences, [], `a slave replaying the blocks disagrees with the master: ${JSON.stringify(differences)}`);
    },
  );

  test("a slave's progress is written at most once a second while it moves forward, the last value when the second is up, a step back at once", async () => {
    const recorder = slaveProgressRecorder(db, (err) => assert.fail(String(err)));
    const recorded = async () =>
      Number((await db.query<{ n: string }>("SELECT applied_seq AS n FROM lp_slave_progress WHERE slave = 'progress-slave'")).rows[0]?.n ?? -1);
    await recorder.record('progress-slave', 10);
    await recorder.record('progress-slave', 11);
    await recorder.record('progress-slave', 12);
    assert.equal(await recorded(), 10, 'the first written at once, the next two held back');
    await new Promise((r) => setTimeout(r, PROGRESS_EVERY_MS + 300));
    assert.equal(await recorded(), 12, 'the last held value written when the second was up');
    // A slave restored from an older backup: retention must know at once.
    await recorder.record('progress-slave', 5);
    assert.equal(await recorded(), 5);
  });

  test('a key saved again after its block was pruned is answered as the first save, and a slave applies on', { timeout: 60_000 }, async () => {
    const slave = await freshDatabase(stack, 'keys');
    await migrateReplica(slave.db);
    await deployModel(slave.db, model);
    await applyBlocks(slave.db, await blocksAfter(db, 0, 100_000));
    const request = {
      modelChecksum: checksum,
      origin: 'a-client',
      idempotencyKey: 'sha256-of-a-file',
      changes: [{ class: 'account', op: 'upsert' as const, values: { id: 777_001, owner: 'file', balance: 5 } }],
    };
    const first = await saveOnMaster(master, request);
    // Something newer, so that the first block is not the newest (which is always kept).
    await saveOnMaster(master, {
      ...request,
      idempotencyKey: 'something-newer',
      changes: [{ class: 'account', op: 'upsert', values: { id: 777_002 } }],
    });
    await applyBlocks(slave.db, await blocksAfter(db, first.seq - 1, 100_000));
    await recordSlaveProgress(db, 'keys-slave', first.seq + 1);
    const pruned = await pruneCommitblocks(db, ['keys-slave'], 0);
    assert.ok(pruned.pruned > 0 && (await blocksAfter(db, 0, 1))[0]!.seq > first.seq, 'the first block is pruned');
    // The same file saved again a week later.
    const again = await saveOnMaster(master, request);
    assert.deepEqual(again, { seq: first.seq, duplicate: true });
    await applyBlocks(slave.db, await blocksAfter(db, first.seq + 1, 100_000));
    assert.deepEqual(await compareReplicas(db, slave.db, model), []);
  });

  test('a slave applies a block the master accepted before values were checked, as the master wrote it', { timeout: 60_000 }, async () => {
    const slave = await freshDatabase(stack, 'oldblock');
    await migrateReplica(slave.db);
    await deployModel(slave.db, model);
    // An object for a text attribute: accepted (and written as its JSON text) by masters before the check existed.
    const block = {
      seq: 1,
      modelChecksum: checksum,
      changes: [{ class: 'account', op: 'upsert' as const, values: { id: 1, owner: { first: 'Ada' }, balance: 1 } }],
      origin: 'old-client',
      idempotencyKey: 'before-value-checks',
      committedAt: '2026-11-01T10:00:00.000001+00:00',
    };
    await applyBlocks(slave.db, [block]);
    const { rows } = await slave.db.query<{ owner: string }>('SELECT owner FROM account WHERE id = 1');
    assert.deepEqual(rows, [{ owner: '{"first":"Ada"}' }]);
  });

  test(
    'a pull answer is bounded by bytes as well as by count: large blocks come a few at a time, and all of them',
    { timeout: 120_000 },
    async () => {
      const start = (await blocksAfter(db, 0, 1_000_000)).at(-1)!.seq;
      // 24 saves of 1 MiB each: more than one answer may carry.
      const big = 'x'.repeat(1 << 20);
      for (let i = 0; i < 24; i++) {
        await saveOnMaster(master, {
          modelChecksum: checksum,
          origin: 'big-writer',
          idempotencyKey: `big-${i}`,
          changes: [{ class: 'account', op: 'upsert', values: { id: 900_000 + i, owner: big, balance: i } }],
        });
      }
      let after = start;
      let answers = 0;
      while (after < start + 24) {
        const { blocks } = await answerBlocksAfter(db, after, 500);
        const bytes = blocks.reduce((n, b) => n + JSON.stringify(b.changes).length, 0);
        assert.ok(blocks.length >= 1, 'every answer carries at least one block');
        assert.ok(bytes <= MAX_ANSWER_BYTES || blocks.length === 1, `an answer carried ${blocks.length} blocks, ${bytes} bytes of changes`);
        assert.equal(blocks[0]!.seq, after + 1);
        after = blocks.at(-1)!.seq;
        answers++;
      }
      assert.ok(answers > 1, `${answers} answers`);
    },
  );

  test(
    'deploying models while 16 writers save: no deadlock, and every save is made or refused as made under an old model',
    { timeout: 120_000 },
    async () => {
      const writers = 16;
      let deploying = true;
      let current = checksum;
      const failures: string[] = [];
      let made = 0;
      let madeWhileDeploying = 0;
      const write = async (w: number) => {
        // On while the deploys go on, then three more saves each under the last model.
        for (let i = 0, after = 0; deploying || after < 3; i++) {
          if (!deploying) after++;
          try {
            await saveOnMaster(master, {
              modelChecksum: current,
              origin: `deploy-writer-${w}`,
              idempotencyKey: `deploy-writer-${w}-${i}`,
              changes: [{ class: 'account', op: 'upsert', values: { id: 500_000 + (i % 50) * writers + w, owner: `w${w}`, balance: i } }],
            });
            made++;
            if (deploying) madeWhileDeploying++;
          } catch (err) {
            // Made under the model a deploy just replaced: the writer reloads it, as the message says.
            if (!(err instanceof ModelMismatch)) failures.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
          }
        }
      };
      const running = Array.from({ length: writers }, (_, w) => write(w));
      let next = model;
      try {
        for (let d = 1; d <= 6; d++) {
          const account = next.classes[0]!;
          next = parseModel({ classes: [{ ...account, attributes: [...account.attributes, { name: `note_${d}`, type: 'text', nullable: true }] }] });
          await new Promise((r) => setTimeout(r, 150));
          current = (await deployModel(master, next)).checksum;
        }
      } finally {
        // Whatever happened to a deploy, the writers stop.
        deploying = false;
        await Promise.all(running);
      }
      assert.deepEqual(failures.slice(0, 5), [], `${failures.length} saves failed`);
      assert.ok(madeWhileDeploying > 0, 'saves were made while the models were deployed');
      assert.ok(made >= writers * 3, `${made} saves made`);
    },
  );
});
