/**
 * Applying object changes to a database under a model: each change is checked against
 * the model (the class exists, the attributes are its own, the key is complete), then
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
import type { ClassSpec, Model } from '../shared/model';
import { quoteIdent } from './evolution';

export class InvalidChange extends Error {
  override readonly name = 'InvalidChange';
}

/** PostgreSQL takes at most 65535 parameters a statement; stay well below, and keep statements a reasonable size. */
const MAX_PARAMETERS = 30_000;
const MAX_ROWS = 1_000;

const param = (v: ObjectValue) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v);

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
}

/** Checks every change first, so an invalid one writes nothing (the caller's transaction rolls back anyway). */
function validated(model: Model, changes: ObjectChange[]): { spec: ClassSpec; change: ObjectChange; given: Record<string, ObjectValue> }[] {
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
    return { spec, change, given };
  });
}

export async function applyObjectChanges(tx: Transaction, model: Model, changes: ObjectChange[]): Promise<void> {
  let current: Statement | undefined;
  const flush = async () => {
    if (current) await run(tx, current);
    current = undefined;
  };
  for (const { spec, change, given } of validated(model, changes)) {
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
      current = { spec, op: change.op, columns, signature, rows: [], keys: new Set() };
    }
    current.rows.push(columns.map((col) => param(given[col]!)));
    current.keys.add(key);
  }
  await flush();
}

async function run(tx: Transaction, s: Statement): Promise<void> {
  if (s.op === 'upsert' && s.rows.length > 1) {
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
