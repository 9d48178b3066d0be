/**
 * Applying object changes to a database under a model: each change is checked against
 * the model (the class exists, the attributes are its own, the key is complete) and
 * becomes one parameterized statement. Used by the master to save and by slaves to
 * apply, so both write the same rows.
 */
import type { Transaction } from '../db/database';
import type { ObjectChange, ObjectValue } from '../shared/commitblock';
import type { ClassSpec, Model } from '../shared/model';
import { quoteIdent } from './evolution';

export class InvalidChange extends Error {
  override readonly name = 'InvalidChange';
}

const param = (v: ObjectValue) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v);

function classOf(model: Model, change: ObjectChange, index: number): ClassSpec {
  const c = model.classes.find((x) => x.name === change.class);
  if (!c) throw new InvalidChange(`changes[${index}]: class "${change.class}" is not in the model`);
  return c;
}

export async function applyObjectChanges(tx: Transaction, model: Model, changes: ObjectChange[]): Promise<void> {
  for (const [index, change] of changes.entries()) {
    const c = classOf(model, change, index);
    const given = change.op === 'upsert' ? change.values : change.key;
    for (const name of Object.keys(given)) {
      if (!c.attributes.some((a) => a.name === name)) throw new InvalidChange(`changes[${index}]: "${name}" is not an attribute of class ${c.name}`);
    }
    for (const k of c.key) {
      if (given[k] === undefined || given[k] === null)
        throw new InvalidChange(`changes[${index}]: key attribute "${k}" of class ${c.name} is missing`);
    }
    const table = quoteIdent(c.name);
    if (change.op === 'delete') {
      await tx.query(
        `DELETE FROM ${table} WHERE ${c.key.map((k, i) => `${quoteIdent(k)} = $${i + 1}`).join(' AND ')}`,
        c.key.map((k) => param(given[k]!)),
      );
      continue;
    }
    const columns = Object.keys(given);
    const updates = columns.filter((col) => !c.key.includes(col)).map((col) => `${quoteIdent(col)} = EXCLUDED.${quoteIdent(col)}`);
    await tx.query(
      `INSERT INTO ${table} (${columns.map(quoteIdent).join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})
       ON CONFLICT (${c.key.map(quoteIdent).join(', ')}) ${updates.length > 0 ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING'}`,
      columns.map((col) => param(given[col]!)),
    );
  }
}
