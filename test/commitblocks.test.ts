/**
 * The master's commitblocks on a real PostgreSQL: many saves committing at once, while
 * a reader pulls after its high-water mark the way a slave does. The reader must never
 * see a gap (a block numbered below one it already read, committed later), and must
 * end with every block exactly once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openDatabase } from '../src/db/database';
import { blocksAfter, ModelMismatch, saveOnMaster } from '../src/master/commitblocks';
import { deployModel, migrateReplica } from '../src/model/deploy';
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
  const { url, db } = await freshDatabase(await testStack(), 'master');
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
});
