/**
 * Applying object changes in multi-row statements must leave exactly what applying them
 * one by one leaves: a seeded random stream of upserts (with varying attribute sets) and
 * deletes over a small key space, so keys repeat often, on two real databases.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyObjectChanges, InvalidChange } from '../src/model/objectChanges';
import { deployModel, migrateReplica } from '../src/model/deploy';
import type { ObjectChange } from '../src/shared/commitblock';
import { contentChecksums } from './helpers/replication';
import { freshDatabase, testStack } from './helpers/stack';
import { parseModel } from '../src/model/modelFile';

const model = parseModel({
  classes: [
    {
      name: 'shelf',
      key: ['room', 'n'],
      attributes: [
        { name: 'room', type: 'text', nullable: false },
        { name: 'n', type: 'integer', nullable: false },
        { name: 'label', type: 'text' },
        { name: 'tags', type: 'jsonb' },
      ],
    },
    {
      name: 'note',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'bigint', nullable: false },
        { name: 'body', type: 'text' },
        { name: 'at', type: 'timestamptz' },
        { name: 'amount', type: 'numeric' },
      ],
    },
  ],
});

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function stream(seed: number, length: number): ObjectChange[] {
  const next = random(seed);
  const pick = <T>(values: T[]) => values[Math.floor(next() * values.length)]!;
  return Array.from({ length }, (_, i): ObjectChange => {
    if (next() < 0.7) {
      const room = pick(['a', 'b']);
      const n = Math.floor(next() * 6);
      if (next() < 0.2) return { class: 'shelf', op: 'delete', key: { room, n } };
      const values: Record<string, unknown> = { room, n };
      if (next() < 0.7) values.label = `label ${i}`;
      if (next() < 0.5) values.tags = { i, even: i % 2 === 0 };
      return { class: 'shelf', op: 'upsert', values } as ObjectChange;
    }
    const id = Math.floor(next() * 5);
    return next() < 0.2 ? { class: 'note', op: 'delete', key: { id } } : { class: 'note', op: 'upsert', values: { id, body: `body ${i}` } };
  });
}

describe('object changes in multi-row statements', async () => {
  const config = await testStack();
  const batched = (await freshDatabase(config, 'batched')).db;
  const single = (await freshDatabase(config, 'single')).db;
  for (const db of [batched, single]) {
    await migrateReplica(db);
    await deployModel(db, model);
  }

  test('leave the same rows as one statement per change, over seeded random streams', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const changes = stream(seed, 400);
      await batched.transaction((tx) => applyObjectChanges(tx, model, changes));
      await single.transaction(async (tx) => {
        for (const change of changes) await applyObjectChanges(tx, model, [change]);
      });
      const [b, s] = [await contentChecksums(batched, model), await contentChecksums(single, model)];
      delete b.lp_commitblocks;
      delete s.lp_commitblocks;
      assert.deepEqual(b, s, `seed ${seed}`);
    }
    const { rows } = await batched.query<{ n: string }>('SELECT count(*) AS n FROM shelf');
    assert.ok(Number(rows[0]!.n) > 0, 'the streams leave rows to compare');
  });

  test('keys PostgreSQL sees as one row though they differ as JSON (1 and "1") still apply, in order', async () => {
    await batched.transaction((tx) =>
      applyObjectChanges(tx, model, [
        { class: 'note', op: 'upsert', values: { id: 77, body: 'first' } },
        { class: 'note', op: 'upsert', values: { id: '77', body: 'second' } },
      ]),
    );
    const { rows } = await batched.query<{ body: string }>('SELECT body FROM note WHERE id = 77');
    assert.deepEqual(rows, [{ body: 'second' }]);
  });

  test('one invalid change in a batch writes nothing of the batch', async () => {
    const before = await contentChecksums(batched, model);
    await assert.rejects(
      batched.transaction((tx) =>
        applyObjectChanges(tx, model, [
          { class: 'note', op: 'upsert', values: { id: 99, body: 'x' } },
          { class: 'note', op: 'upsert', values: { body: 'no key' } },
        ]),
      ),
      (err: Error) => err instanceof InvalidChange && /changes\[1\]: key attribute "id" of class note is missing/.test(err.message),
    );
    assert.deepEqual(await contentChecksums(batched, model), before);
  });

  test('every timestamp and number form the value check takes, PostgreSQL takes as meant', async () => {
    /** [timestamp given, numeric given, the instant stored, the numeric stored] */
    const forms: [string, string | number, string, string][] = [
      ['2026-12-24T00:00:00Z', 0, '2026-12-24T00:00:00.000Z', '0'],
      ['2026-12-24 18:30:00+01:00', '12.50', '2026-12-24T17:30:00.000Z', '12.50'],
      ['2024-02-29T23:59:59.123456-05:30', '-0.001', '2024-03-01T05:29:59.123Z', '-0.001'],
      ['2026-01-01T00:00Z', '1e5', '2026-01-01T00:00:00.000Z', '100000'],
      ['2026-01-01T10:00:00+0200', 12.25, '2026-01-01T08:00:00.000Z', '12.25'],
      // The earliest day, at the widest offset: PostgreSQL keeps it (in 1 BC, UTC).
      ['0001-01-01T00:00:00+15:59', '9223372036854775807', '0000-12-31T08:01:00.000Z', '9223372036854775807'],
    ];
    const changes = forms.map(([at, amount], i): ObjectChange => ({ class: 'note', op: 'upsert', values: { id: `${500 + i}`, at, amount } }));
    await batched.transaction((tx) => applyObjectChanges(tx, model, changes));
    const { rows } = await batched.query<{ at: Date; amount: string }>('SELECT at, amount::text AS amount FROM note WHERE id >= 500 ORDER BY id');
    assert.deepEqual(
      rows.map((r) => [r.at.toISOString(), r.amount]),
      forms.map(([, , instant, amount]) => [instant, amount]),
    );
  });
});
