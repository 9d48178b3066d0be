/**
 * Key changes in the evolution plan, run on the real PostgreSQL: the plan must be in an
 * order that applies (a new key's column exists before the key is made of it, an old
 * key's column goes only after the key), and the old primary key is found in the catalog,
 * whatever its name (PostgreSQL truncates "<table>_pkey" to 63 bytes for long names).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Database } from '../src/db/database';
import { deployModel, migrateReplica } from '../src/model/deploy';
import { planEvolution } from '../src/model/evolution';
import { parseModel } from '../src/model/modelFile';
import type { Model } from '../src/shared/model';
import { freshDatabase, testStack } from './helpers/stack';

// Everything that needs a teardown is made here, not in a test: onTeardown's hook belongs to
// where it is first called, and one registered in a test would run when that test ends.
const stack = await testStack();

const model = (name: string, key: string[], attributes: { name: string; type: string; nullable?: boolean }[]): Model =>
  parseModel({ classes: [{ name, key, attributes }] });

async function replica(prefix: string): Promise<Database> {
  const { db } = await freshDatabase(stack, prefix);
  await migrateReplica(db);
  return db;
}

/** One database per test. */
const databases = {
  keycol: await replica('keycol'),
  keydrop: await replica('keydrop'),
  keynull: await replica('keynull'),
  longname: await replica('longname'),
};

/** The primary key's columns as the catalog has them, in key order. */
async function primaryKey(db: Database, table: string): Promise<string[]> {
  const { rows } = await db.query<{ column: string }>(
    `SELECT a.attname AS column
       FROM pg_index i
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = to_regclass(quote_ident($1)) AND i.indisprimary
      ORDER BY k.n`,
    [table],
  );
  return rows.map((r) => r.column);
}

const V1 = model(
  'book',
  ['id'],
  [
    { name: 'id', type: 'integer', nullable: false },
    { name: 'title', type: 'text' },
  ],
);

/** v1 with a new column that becomes the key. */
const V2 = model(
  'book',
  ['code'],
  [
    { name: 'id', type: 'integer', nullable: false },
    { name: 'title', type: 'text' },
    { name: 'code', type: 'text', nullable: false },
  ],
);

describe('key changes in the evolution plan', () => {
  test('a new column comes before the key made of it', () => {
    const plan = planEvolution(V1, V2).map((c) => c.description);
    assert.deepEqual(plan, ['add attribute book.code (text, not null)', 'change the key of book from (id) to (code)']);
  });

  test('a key changed to a column added in the same model deploys on PostgreSQL', async () => {
    const db = databases.keycol;
    await deployModel(db, V1);
    await deployModel(db, V2, { allowDestructive: true });
    assert.deepEqual(await primaryKey(db, 'book'), ['code']);
  });

  test('an old key column dropped in the same model goes after the key change', async () => {
    const db = databases.keydrop;
    await deployModel(db, V2, { allowDestructive: true });
    const v3 = model('book', ['title'], [{ name: 'title', type: 'text', nullable: false }]);
    await deployModel(db, v3, { allowDestructive: true });
    assert.deepEqual(await primaryKey(db, 'book'), ['title']);
  });

  test('an old key column allowed null in the same model loses its NOT NULL after the key change', async () => {
    const db = databases.keynull;
    await deployModel(db, V2, { allowDestructive: true });
    const v3 = model(
      'book',
      ['id'],
      [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'title', type: 'text' },
        { name: 'code', type: 'text', nullable: true },
      ],
    );
    assert.deepEqual(
      planEvolution(V2, v3).map((c) => c.description),
      ['change the key of book from (code) to (id)', 'allow null in book.code'],
    );
    await deployModel(db, v3, { allowDestructive: true });
    assert.deepEqual(await primaryKey(db, 'book'), ['id']);
  });

  test('the key of a class with a 63-byte name changes, its truncated constraint name found in the catalog', async () => {
    const db = databases.longname;
    const name = `t${'x'.repeat(62)}`;
    assert.equal(Buffer.byteLength(name), 63);
    await deployModel(
      db,
      model(
        name,
        ['id'],
        [
          { name: 'id', type: 'integer', nullable: false },
          { name: 'part', type: 'integer', nullable: false },
        ],
      ),
    );
    await deployModel(
      db,
      model(
        name,
        ['id', 'part'],
        [
          { name: 'id', type: 'integer', nullable: false },
          { name: 'part', type: 'integer', nullable: false },
        ],
      ),
      { allowDestructive: true },
    );
    assert.deepEqual(await primaryKey(db, name), ['id', 'part']);
  });
});
