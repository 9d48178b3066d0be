/**
 * Applying object changes to a database under a model: each change is checked against
 * the model (the class exists, the attributes are its own, the key is complete, every
 * value is one its attribute's type takes), then
 * consecutive changes of one class, operation and set of attributes become one
 * parameterized multi-row statement. Used by the master to save and by slaves to apply,
 * so both write the same rows.
 *
 * Why batching keeps the outcome: changes are grouped only while they are consecutive and
 * touch distinct keys, so every row sees its changes in their original order. A key seen
 * again starts a new statement (an upsert may not touch one row twice).
 */
import type { Transaction } from '../db/database';
import type { ObjectChange, ObjectValue } from '../shared/commitblock';
import type { AttributeSpec, AttributeType, ClassSpec, Model } from '../shared/model';
import { quoteIdent } from './evolution';

export class InvalidChange extends Error {
  override readonly name = 'InvalidChange';
}

/** PostgreSQL takes at most 65535 parameters a statement; stay well below, and keep statements a reasonable size. */
const MAX_PARAMETERS = 30_000;
const MAX_ROWS = 1_000;

/**
 * A value as a query parameter. A jsonb column takes JSON text, so every jsonb value is
 * encoded, strings and numbers too: the string "[1]" sent as it is would be stored as an
 * array, and "plain words" refused as invalid JSON. Other columns take the value itself
 * (an object only reaches one in a block a master accepted before values were checked,
 * and was written as its JSON text then).
 */
const param = (v: ObjectValue, type: AttributeType) => (v === null ? null : type === 'jsonb' || typeof v === 'object' ? JSON.stringify(v) : v);

function classOf(model: Model, change: ObjectChange, index: number): ClassSpec {
  const c = model.classes.find((x) => x.name === change.class);
  if (!c) throw new InvalidChange(`changes[${index}]: class "${change.class}" is not in the model`);
  return c;
}

interface Statement {
  spec: ClassSpec;
  op: ObjectChange['op'];
  columns: string[];
  signature: string;
  rows: unknown[][];
  keys: Set<string>;
  /** Every key so far is one PostgreSQL tells apart exactly as JSON does (see plainKey). */
  plainKeys: boolean;
}

/** Checks every change first, so an invalid one writes nothing (the caller's transaction rolls back anyway). */
function validated(
  model: Model,
  changes: ObjectChange[],
  checkValues: boolean,
): { spec: ClassSpec; change: ObjectChange; given: Record<string, ObjectValue> }[] {
  return changes.map((change, index) => {
    const spec = classOf(model, change, index);
    const given = change.op === 'upsert' ? change.values : change.key;
    for (const name of Object.keys(given)) {
      if (!spec.attributes.some((a) => a.name === name))
        throw new InvalidChange(`changes[${index}]: "${name}" is not an attribute of class ${spec.name}`);
    }
    for (const k of spec.key) {
      if (given[k] === undefined || given[k] === null)
        throw new InvalidChange(`changes[${index}]: key attribute "${k}" of class ${spec.name} is missing`);
    }
    for (const [name, value] of checkValues ? Object.entries(given) : []) {
      const attribute = spec.attributes.find((a) => a.name === name)!;
      const problem = valueProblem(attribute, value);
      if (problem) throw new InvalidChange(`changes[${index}]: attribute "${name}" of class ${spec.name} is ${problem}`);
    }
    return { spec, change, given };
  });
}

/**
 * How deep a jsonb value may nest. Far more than business data needs, and far less than
 * what overflows the recursive code that handles the value later: JSON.stringify here
 * and on the slaves, PostgreSQL's own JSON parser.
 */
export const MAX_JSON_DEPTH = 100;

const INTEGER_RANGE = [-(2 ** 31), 2 ** 31 - 1] as const;
const BIGINT_RANGE = [-(2n ** 63n), 2n ** 63n - 1n] as const;

/** What each type takes, said as the refusal says it. */
const EXPECTED: Record<AttributeType, string> = {
  boolean: 'true or false',
  integer: `an integer from ${INTEGER_RANGE[0]} to ${INTEGER_RANGE[1]}`,
  bigint: `an integer from ${BIGINT_RANGE[0]} to ${BIGINT_RANGE[1]}, as a number up to 2^53 or a string of digits`,
  numeric: 'a finite number or a decimal string',
  text: 'a string',
  timestamptz: 'an ISO 8601 date and time with a zone, such as 2026-12-24T18:30:00Z or 2026-12-24 18:30:00+01:00',
  jsonb: 'a JSON value',
};

/**
 * Whether a value (not null) is one of the type's. Only forms that mean the same on every
 * database: a JSON number beyond 2^53 has already lost digits, so a big bigint comes as a
 * string; a decimal string keeps a numeric's digits, which a JSON number may not.
 */
const TAKES: Record<AttributeType, (value: unknown) => boolean> = {
  boolean: (v) => typeof v === 'boolean',
  integer: (v) => Number.isInteger(v) && (v as number) >= INTEGER_RANGE[0] && (v as number) <= INTEGER_RANGE[1],
  bigint: (v) => Number.isSafeInteger(v) || (typeof v === 'string' && isBigintString(v)),
  numeric: (v) => (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(v)),
  text: (v) => typeof v === 'string',
  timestamptz: (v) => typeof v === 'string' && isTimestamp(v),
  jsonb: (v) => v !== undefined,
};

/** "text: expected a string, found an object", or undefined when the attribute takes the value. */
function valueProblem(attribute: AttributeSpec, value: unknown): string | undefined {
  const { type } = attribute;
  if (value === null) return attribute.nullable ? undefined : `${type}, not nullable: expected ${EXPECTED[type]}, found null`;
  if (!TAKES[type](value)) return `${type}: expected ${EXPECTED[type]}, found ${found(value)}`;
  // PostgreSQL refuses U+0000 in text and jsonb; said here, the refusal names the attribute.
  if (type === 'text' && (value as string).includes('\u0000')) return `${type}: PostgreSQL cannot store the character U+0000 in text`;
  if (type === 'jsonb') {
    const problem = jsonProblem(value);
    if (problem) return `${type}: ${problem}`;
  }
  return undefined;
}

function isBigintString(v: string): boolean {
  if (!/^-?\d{1,30}$/.test(v)) return false;
  const n = BigInt(v);
  return n >= BIGINT_RANGE[0] && n <= BIGINT_RANGE[1];
}

/**
 * A date and time with an explicit zone: without one, PostgreSQL reads the time in its
 * session's time zone, and a master and a slave set to different zones would store
 * different instants for one save.
 */
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2})(?::?(\d{2}))?)$/;

function isTimestamp(v: string): boolean {
  const m = TIMESTAMP.exec(v);
  if (!m) return false;
  const [year, month, day, hour, minute, second, zoneHour, zoneMinute] = Array.from({ length: 8 }, (_, i) => Number(m[i + 1] ?? 0));
  // Year 0 does not exist for PostgreSQL; it takes zone offsets up to 15:59.
  const date = year! >= 1 && month! >= 1 && month! <= 12 && day! >= 1 && day! <= daysIn(year!, month!);
  return date && hour! <= 23 && minute! <= 59 && second! <= 59 && zoneHour! <= 15 && zoneMinute! <= 59;
}

function daysIn(year: number, month: number): number {
  if (month !== 2) return [4, 6, 9, 11].includes(month) ? 30 : 31;
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
}

/**
 * Walks a jsonb value without recursion, so a value nested too deep is refused here
 * instead of overflowing the stack; also finds what JSON cannot carry (values only an
 * in-process caller could pass) and the U+0000 PostgreSQL's jsonb refuses.
 */
function jsonProblem(value: unknown): string | undefined {
  const pending: [unknown, number][] = [[value, 1]];
  while (pending.length > 0) {
    const [v, depth] = pending.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return 'PostgreSQL cannot store the character U+0000 in jsonb';
    } else if (typeof v === 'object' && v !== null) {
      if (depth > MAX_JSON_DEPTH) return `nested deeper than ${MAX_JSON_DEPTH} levels`;
      for (const [key, child] of Object.entries(v)) {
        if (key.includes('\u0000')) return 'PostgreSQL cannot store the character U+0000 in jsonb';
        pending.push([child, depth + 1]);
      }
    } else if (!(typeof v === 'boolean' || v === null || (typeof v === 'number' && Number.isFinite(v)))) {
      return `expected ${EXPECTED.jsonb}, found ${found(v)} inside`;
    }
  }
  return undefined;
}

/** The value as a refusal names it: its kind, and a scalar's value (a string cut short). */
function found(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'object') return 'an object';
  return typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`;
}

/**
 * Checks changes against the model as applyObjectChanges would, writing nothing: the
 * master checks each save of a shared transaction alone, so that a refusal names the
 * save's own changes and the others still go in one statement.
 */
export function checkObjectChanges(model: Model, changes: ObjectChange[]): void {
  validated(model, changes, true);
}

/**
 * `checkValues: false` is for slaves applying blocks the master accepted: a slave writes
 * what the master wrote, and a block accepted before a value rule existed must not stop
 * it (the rows would differ from the master's, or the slave would halt for good). The
 * master passes it too for changes checkObjectChanges has already checked.
 */
export async function applyObjectChanges(
  tx: Transaction,
  model: Model,
  changes: ObjectChange[],
  options: { checkValues?: boolean } = {},
): Promise<void> {
  let current: Statement | undefined;
  const flush = async () => {
    if (current) await run(tx, current);
    current = undefined;
  };
  for (const { spec, change, given } of validated(model, changes, options.checkValues ?? true)) {
    // A delete names only the key; an upsert the attributes it sets, in a stable order.
    const columns = change.op === 'delete' ? spec.key : Object.keys(given).sort();
    const signature = `${spec.name}\u0000${change.op}\u0000${columns.join(',')}`;
    const key = JSON.stringify(spec.key.map((k) => given[k]));
    if (
      !current ||
      current.signature !== signature ||
      current.keys.has(key) ||
      current.rows.length >= MAX_ROWS ||
      (current.rows.length + 1) * columns.length > MAX_PARAMETERS
    ) {
      await flush();
      current = { spec, op: change.op, columns, signature, rows: [], keys: new Set(), plainKeys: true };
    }
    current.rows.push(columns.map((col) => param(given[col]!, spec.attributes.find((a) => a.name === col)!.type)));
    current.keys.add(key);
    current.plainKeys &&= spec.key.every((k) => plainKey(spec.attributes.find((a) => a.name === k)!.type, given[k]));
  }
  await flush();
}

async function run(tx: Transaction, s: Statement): Promise<void> {
  if (s.op === 'upsert' && s.rows.length > 1 && !s.plainKeys) {
    // Keys are told apart as JSON here, but PostgreSQL may see one row where JSON sees two
    // (1 and "1", two spellings of one instant); then the statement would touch a row twice
    // and fail. Try it under a savepoint, and on that error apply the rows one by one.
    await tx.query('SAVEPOINT lp_batch');
    try {
      await tx.query(upsertSql(s, s.rows.length), s.rows.flat());
      await tx.query('RELEASE SAVEPOINT lp_batch');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== CARDINALITY_VIOLATION) throw err;
      await tx.query('ROLLBACK TO SAVEPOINT lp_batch');
    }
    for (const row of s.rows) await tx.query(upsertSql(s, 1), row);
    return;
  }
  if (s.op === 'delete') {
    await tx.query(
      `DELETE FROM ${quoteIdent(s.spec.name)} WHERE (${s.columns.map(quoteIdent).join(', ')}) IN (${placeholders(s.columns.length, s.rows.length)})`,
      s.rows.flat(),
    );
    return;
  }
  await tx.query(upsertSql(s, s.rows.length), s.rows.flat());
}

/**
 * A key value that PostgreSQL holds equal to another exactly when their JSON is equal: an
 * integer given as a number, a text as a string (the columns lessonplan makes keep the
 * database's deterministic collation), a boolean as one. Batches of such keys need no
 * savepoint, which would cost two more round trips a statement.
 */
function plainKey(type: AttributeType, value: unknown): boolean {
  if (type === 'integer' || type === 'bigint') return Number.isSafeInteger(value);
  if (type === 'text') return typeof value === 'string';
  return type === 'boolean' && typeof value === 'boolean';
}

/** "ON CONFLICT DO UPDATE command cannot affect row a second time" */
const CARDINALITY_VIOLATION = '21000';

/** ($1, $2), ($3, $4), ... */
function placeholders(columns: number, rows: number): string {
  return Array.from({ length: rows }, (_, r) => `(${Array.from({ length: columns }, (_, i) => `$${r * columns + i + 1}`).join(', ')})`).join(', ');
}

function upsertSql(s: Statement, rows: number): string {
  const updates = s.columns.filter((col) => !s.spec.key.includes(col)).map((col) => `${quoteIdent(col)} = EXCLUDED.${quoteIdent(col)}`);
  return `INSERT INTO ${quoteIdent(s.spec.name)} (${s.columns.map(quoteIdent).join(', ')}) VALUES ${placeholders(s.columns.length, rows)}
     ON CONFLICT (${s.spec.key.map(quoteIdent).join(', ')}) ${updates.length > 0 ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING'}`;
}
