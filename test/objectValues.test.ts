/**
 * Every value of a change is checked against its attribute's type before anything is
 * written, and a jsonb value's nesting is bounded before anything recursive runs on it:
 * a stranger's save must be refused naming the change, class and attribute, not written
 * as something else nor crash the master. No database: the checks run before the first
 * statement, which a recording transaction shows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Transaction } from '../src/db/database';
import { applyObjectChanges, InvalidChange } from '../src/model/objectChanges';
import { parseModel } from '../src/model/modelFile';
import type { ObjectChange } from '../src/shared/commitblock';

const model = parseModel({
  classes: [
    {
      name: 'loan',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'bigint', nullable: false },
        { name: 'name', type: 'text' },
        { name: 'copies', type: 'integer' },
        { name: 'fee', type: 'numeric' },
        { name: 'open', type: 'boolean' },
        { name: 'until', type: 'timestamptz' },
        { name: 'extra', type: 'jsonb' },
        { name: 'reader', type: 'text', nullable: false },
      ],
    },
  ],
});

/** A transaction that only records what it is asked, so a test sees whether anything was written. */
function recorder() {
  const statements: string[] = [];
  const tx: Transaction = {
    query: async (sql: string) => {
      statements.push(sql);
      return { rows: [], rowCount: 0, command: '', oid: 0, fields: [] };
    },
  };
  return { tx, statements };
}

const upsert = (values: Record<string, unknown>) => ({ class: 'loan', op: 'upsert', values: { id: 1, reader: 'ada', ...values } }) as ObjectChange;

/** `depth` arrays, one inside the other. */
function nested(depth: number): unknown {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

async function refused(changes: ObjectChange[], message: RegExp): Promise<void> {
  const { tx, statements } = recorder();
  await assert.rejects(applyObjectChanges(tx, model, changes), (err: Error) => {
    assert.ok(err instanceof InvalidChange, `an InvalidChange, not ${err.name}: ${err.message}`);
    assert.match(err.message, message);
    return true;
  });
  assert.deepEqual(statements, [], 'nothing is written');
}

async function accepted(changes: ObjectChange[]): Promise<void> {
  const { tx, statements } = recorder();
  await applyObjectChanges(tx, model, changes);
  assert.ok(statements.length > 0);
}

describe('values checked against attribute types', () => {
  test('an object for a text attribute is refused naming the change, class and attribute; nothing is written', async () => {
    await refused(
      [upsert({ name: 'fine' }), upsert({ id: 2, name: { first: 'Ada' } })],
      /^changes\[1\]: attribute "name" of class loan is text: expected a string, found an object$/,
    );
  });

  test('a jsonb value nested 100,000 deep is refused, without overflowing the stack', async () => {
    await refused([upsert({ extra: nested(100_000) })], /^changes\[0\]: attribute "extra" of class loan is jsonb: nested deeper than \d+ levels$/);
  });

  test('a deep value for a text attribute is refused by its type, at no depth', async () => {
    await refused([upsert({ name: nested(100_000) })], /^changes\[0\]: attribute "name" of class loan is text: expected a string, found an array$/);
  });

  test('a jsonb value nested within the bound is taken', async () => {
    await accepted([upsert({ extra: nested(50) }), upsert({ id: 2, extra: { a: [1, 'two', null, true, { b: 2.5 }] } })]);
  });

  const cases: { attribute: string; good: unknown[]; bad: [unknown, RegExp][] }[] = [
    {
      attribute: 'name',
      good: ['', 'Ada Lovelace', 'ünïcødé ✓'],
      bad: [
        [42, /is text: expected a string, found the number 42$/],
        [true, /is text: expected a string, found a boolean$/],
        [['a'], /is text: expected a string, found an array$/],
        ['a\u0000b', /is text: .*U\+0000/],
      ],
    },
    {
      attribute: 'copies',
      good: [0, -5, 2_147_483_647, -2_147_483_648],
      bad: [
        ['12', /is integer: expected an integer from -2147483648 to 2147483647, found the string "12"$/],
        [1.5, /is integer: expected an integer from -2147483648 to 2147483647, found the number 1\.5$/],
        [2_147_483_648, /is integer: .*found the number 2147483648$/],
        [{}, /is integer: .*found an object$/],
      ],
    },
    {
      attribute: 'id',
      good: [1, Number.MAX_SAFE_INTEGER, '9223372036854775807', '-9223372036854775808', '77'],
      bad: [
        [2 ** 60, /is bigint: .*as a number up to 2\^53 or a string of digits, found the number 1152921504606847000$/],
        [
          '9223372036854775808',
          /is bigint: expected an integer from -9223372036854775808 to 9223372036854775807.*found the string "9223372036854775808"$/,
        ],
        ['12a', /is bigint: .*found the string "12a"$/],
        [0.5, /is bigint: .*found the number 0\.5$/],
      ],
    },
    {
      attribute: 'fee',
      good: [0, 12.5, -3, '12.50', '-0.001', '1e5'],
      bad: [
        ['twelve', /is numeric: expected a finite number or a decimal string, found the string "twelve"$/],
        ['NaN', /is numeric: .*found the string "NaN"$/],
        [false, /is numeric: .*found a boolean$/],
      ],
    },
    {
      attribute: 'open',
      good: [true, false],
      bad: [
        ['true', /is boolean: expected true or false, found the string "true"$/],
        [1, /is boolean: expected true or false, found the number 1$/],
      ],
    },
    {
      attribute: 'until',
      good: [
        '2026-12-24T00:00:00Z',
        '2026-12-24 18:30:00+01:00',
        '2024-02-29T23:59:59.123456-05:30',
        '2026-01-01T00:00Z',
        '2026-01-01T10:00:00+0200',
      ],
      bad: [
        ['2026-12-24', /is timestamptz: expected an ISO 8601 date and time with a zone/],
        ['2026-12-24T10:00:00', /is timestamptz: expected an ISO 8601 date and time with a zone/],
        ['tomorrow', /is timestamptz: .*found the string "tomorrow"$/],
        ['2026-02-30T00:00:00Z', /is timestamptz: .*found the string "2026-02-30T00:00:00Z"$/],
        ['2026-13-01T00:00:00Z', /is timestamptz: /],
        ['2026-01-01T24:00:00Z', /is timestamptz: /],
        [1_700_000_000, /is timestamptz: .*found the number 1700000000$/],
      ],
    },
    {
      attribute: 'extra',
      good: [{ a: 1 }, [1, 2], 'a string', 3, false],
      bad: [[{ ['k\u0000']: 1 }, /is jsonb: .*U\+0000/]],
    },
  ];
  for (const { attribute, good, bad } of cases) {
    test(`${attribute}: what its type takes and what it refuses`, async () => {
      for (const value of good) await accepted([upsert({ [attribute]: value })]);
      for (const [value, message] of bad) {
        await refused([upsert({ [attribute]: value })], new RegExp(`^changes\\[0\\]: attribute "${attribute}" of class loan ${message.source}`));
      }
    });
  }

  test('null only where the attribute is nullable; a key never null', async () => {
    await accepted([upsert({ name: null, copies: null, extra: null, until: null })]);
    await refused(
      [upsert({ reader: null })],
      /^changes\[0\]: attribute "reader" of class loan is text, not nullable: expected a string, found null$/,
    );
    await refused([{ class: 'loan', op: 'delete', key: { id: null } }], /^changes\[0\]: key attribute "id" of class loan is missing$/);
  });

  test('the values of a delete key are checked too', async () => {
    await refused(
      [{ class: 'loan', op: 'delete', key: { id: { a: 1 } } }],
      /^changes\[0\]: attribute "id" of class loan is bigint: expected an integer .*found an object$/,
    );
    await accepted([{ class: 'loan', op: 'delete', key: { id: '5' } }]);
  });
});
