/**
 * The model: checksum of the canonical form, the evolution plan, and deploying it to a
 * real PostgreSQL database in one transaction, destructive changes refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { modelChecksum } from '../src/model/checksum';
import { currentModel, deployModel, DestructiveModelChange, migrateReplica } from '../src/model/deploy';
import { planEvolution } from '../src/model/evolution';
import { ModelError, parseModel } from '../src/model/modelFile';
import type { Model } from '../src/shared/model';
import { freshDatabase, testStack } from './helpers/stack';

const library = (): Model =>
  parseModel({
    classes: [
      {
        name: 'book',
        key: ['id'],
        attributes: [
          { name: 'id', type: 'integer', nullable: false },
          { name: 'title', type: 'text' },
          { name: 'copies', type: 'integer' },
        ],
      },
    ],
  });

describe('the model', () => {
  test('the checksum ignores the order of classes and attributes, and changes with content', () => {
    const a = library();
    const b: Model = { classes: [{ ...a.classes[0]!, attributes: [...a.classes[0]!.attributes].reverse() }] };
    assert.equal(modelChecksum(a), modelChecksum(b));
    const c = library();
    c.classes[0]!.attributes[1]!.nullable = false;
    assert.notEqual(modelChecksum(a), modelChecksum(c));
  });

  test('bad models are refused with the field named', () => {
    assert.throws(
      () => parseModel({ classes: [{ name: 'book', key: ['isbn'], attributes: [{ name: 'id', type: 'integer' }] }] }),
      (err: Error) => err instanceof ModelError && /classes\[0\]\.key\[0\]: key attribute "isbn" is not an attribute of class book/.test(err.message),
    );
    assert.throws(
      () => parseModel({ classes: [{ name: 'lp_secret', key: ['id'], attributes: [{ name: 'id', type: 'integer', nullable: false }] }] }),
      /reserved/,
    );
    assert.throws(
      () => parseModel({ classes: [{ name: 'book', key: ['id'], attributes: [{ name: 'id', type: 'float', nullable: false }] }] }),
      /classes\[0\]\.attributes\[0\]\.type/,
    );
  });

  test('the DDL takes only the known attribute types, never a type string from the model', () => {
    // As a model that skipped validation would arrive: the type is not one of ATTRIBUTE_TYPES.
    const injected = library();
    (injected.classes[0]!.attributes[1] as { type: string }).type = 'text); DROP TABLE x; --';
    assert.throws(
      () => planEvolution(null, injected),
      (err: Error) =>
        err instanceof ModelError && /unknown attribute type "text\); DROP TABLE x; --": expected one of boolean, integer/.test(err.message),
    );
    assert.throws(() => planEvolution(library(), injected), ModelError, 'a type change is refused alike');
    assert.match(planEvolution(null, library())[0]!.sql[0]!, /"title" text, "copies" integer,/);
  });

  test('the plan: additive changes are automatic, destructive ones are marked with why', () => {
    const next = library();
    next.classes[0]!.attributes.push({ name: 'isbn', type: 'text', nullable: true });
    next.classes[0]!.attributes.find((a) => a.name === 'copies')!.type = 'bigint';
    next.classes.push({ name: 'loan', key: ['id'], attributes: [{ name: 'id', type: 'bigint', nullable: false }] });
    const additive = planEvolution(library(), next);
    assert.deepEqual(
      additive.map((c) => [c.description, c.destructive]),
      [
        ['widen attribute book.copies from integer to bigint', false],
        ['add attribute book.isbn (text)', false],
        ['add class loan (1 attributes, key id)', false],
      ],
    );
    const narrowed = planEvolution(next, library());
    assert.deepEqual(
      narrowed.filter((c) => c.destructive).map((c) => c.description),
      ['change attribute book.copies from bigint to integer', 'drop attribute book.isbn', 'drop class loan'],
    );
  });

  test('deploying to PostgreSQL: evolves in one transaction, refuses destructive changes, dry run changes nothing', async () => {
    const { db } = await freshDatabase(await testStack(), 'model');
    await migrateReplica(db);
    const first = await deployModel(db, library());
    assert.equal(first.applied, true);
    await db.query('INSERT INTO book (id, title, copies) VALUES (1, $1, 2)', ['Dune']);

    const next = library();
    next.classes[0]!.attributes.push({ name: 'isbn', type: 'text', nullable: true });
    next.classes[0]!.attributes.find((a) => a.name === 'copies')!.type = 'numeric';
    const dry = await deployModel(db, next, { dryRun: true });
    assert.equal(dry.applied, false);
    assert.equal((await currentModel(db))?.checksum, first.checksum, 'a dry run changes nothing');

    const second = await deployModel(db, next);
    assert.equal(second.previous, first.checksum);
    const { rows } = await db.query<{ column_name: string; data_type: string }>(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'book' ORDER BY column_name",
    );
    assert.deepEqual(
      rows.map((r) => `${r.column_name}:${r.data_type}`),
      ['copies:numeric', 'id:integer', 'isbn:text', 'title:text'],
    );
    assert.equal((await db.query('SELECT title FROM book WHERE id = 1')).rows[0]!.title, 'Dune', 'the data is kept');

    await assert.rejects(
      deployModel(db, library()),
      (err: Error) => err instanceof DestructiveModelChange && /drop attribute book\.isbn \(its values would be lost\)/.test(err.message),
    );
    assert.equal((await currentModel(db))?.checksum, second.checksum, 'a refused deploy leaves the model as it was');
    assert.equal((await db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'book' AND column_name = 'isbn'")).rowCount, 1);

    const again = await deployModel(db, next);
    assert.equal(again.applied, false, 'the current model deployed again changes nothing');
  });
});
