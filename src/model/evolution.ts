/**
 * From one model to the next: the schema changes, each with its SQL, and whether it is
 * automatic (a new class, a new nullable attribute, a widened type, a NOT NULL lifted)
 * or destructive (a dropped class or attribute, a narrowed or unrelated type, a changed
 * key, a new NOT NULL), which is refused unless explicitly allowed.
 */
import { ATTRIBUTE_TYPES, WIDENINGS, type AttributeSpec, type AttributeType, type ClassSpec, type Model } from '../shared/model';
import { ModelError } from './modelFile';

export interface SchemaChange {
  /** One line for people: "add attribute book.isbn (text)". */
  description: string;
  destructive: boolean;
  /** Why it is destructive, for the refusal. */
  why?: string;
  sql: string[];
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The SQL each attribute type stands for: the only type text that ever reaches DDL. */
const SQL_TYPES: Record<AttributeType, string> = {
  boolean: 'boolean',
  integer: 'integer',
  bigint: 'bigint',
  numeric: 'numeric',
  text: 'text',
  timestamptz: 'timestamptz',
  jsonb: 'jsonb',
};

/**
 * The SQL type of an attribute type. A model is validated before it is planned, but the
 * type is looked up rather than trusted: a string from a model is never pasted into SQL.
 */
export function sqlType(type: string): string {
  if (!Object.hasOwn(SQL_TYPES, type)) {
    throw new ModelError(`unknown attribute type ${JSON.stringify(type)}: expected one of ${ATTRIBUTE_TYPES.join(', ')}`);
  }
  return SQL_TYPES[type as AttributeType];
}

const columnSql = (a: AttributeSpec) => `${quoteIdent(a.name)} ${sqlType(a.type)}${a.nullable ? '' : ' NOT NULL'}`;

function createTable(c: ClassSpec): string {
  const columns = c.attributes.map(columnSql);
  return `CREATE TABLE ${quoteIdent(c.name)} (${columns.join(', ')}, PRIMARY KEY (${c.key.map(quoteIdent).join(', ')}))`;
}

/** The changes that turn `from` (null: an empty database) into `to`, in an order that applies. */
export function planEvolution(from: Model | null, to: Model): SchemaChange[] {
  const changes: SchemaChange[] = [];
  const before = new Map((from?.classes ?? []).map((c) => [c.name, c]));
  for (const c of to.classes) {
    const old = before.get(c.name);
    before.delete(c.name);
    if (!old) {
      changes.push({
        description: `add class ${c.name} (${c.attributes.length} attributes, key ${c.key.join(', ')})`,
        destructive: false,
        sql: [createTable(c)],
      });
      continue;
    }
    const table = quoteIdent(c.name);
    if (old.key.join(',') !== c.key.join(',')) {
      changes.push({
        description: `change the key of ${c.name} from (${old.key.join(', ')}) to (${c.key.join(', ')})`,
        destructive: true,
        why: 'existing rows may collide under the new key',
        sql: [
          `ALTER TABLE ${table} DROP CONSTRAINT ${quoteIdent(`${c.name}_pkey`)}`,
          `ALTER TABLE ${table} ADD PRIMARY KEY (${c.key.map(quoteIdent).join(', ')})`,
        ],
      });
    }
    const oldAttrs = new Map(old.attributes.map((a) => [a.name, a]));
    for (const a of c.attributes) {
      const was = oldAttrs.get(a.name);
      oldAttrs.delete(a.name);
      const column = `${table}.${quoteIdent(a.name)}`.replace(/"/g, '');
      if (!was) {
        changes.push(
          a.nullable
            ? { description: `add attribute ${column} (${a.type})`, destructive: false, sql: [`ALTER TABLE ${table} ADD COLUMN ${columnSql(a)}`] }
            : {
                description: `add attribute ${column} (${a.type}, not null)`,
                destructive: true,
                why: 'existing rows have no value for it; add it nullable, fill it, then make it not null',
                sql: [`ALTER TABLE ${table} ADD COLUMN ${columnSql(a)}`],
              },
        );
        continue;
      }
      if (was.type !== a.type) {
        const widening = Object.hasOwn(WIDENINGS, was.type) && WIDENINGS[was.type].includes(a.type);
        changes.push({
          description: `${widening ? 'widen' : 'change'} attribute ${column} from ${was.type} to ${a.type}`,
          destructive: !widening,
          ...(widening ? {} : { why: `not every ${was.type} value is a ${a.type} value` }),
          sql: [`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(a.name)} TYPE ${sqlType(a.type)} USING ${quoteIdent(a.name)}::${sqlType(a.type)}`],
        });
      }
      if (was.nullable !== a.nullable) {
        changes.push(
          a.nullable
            ? {
                description: `allow null in ${column}`,
                destructive: false,
                sql: [`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(a.name)} DROP NOT NULL`],
              }
            : {
                description: `forbid null in ${column}`,
                destructive: true,
                why: 'existing rows may hold null there',
                sql: [`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(a.name)} SET NOT NULL`],
              },
        );
      }
    }
    for (const gone of oldAttrs.values()) {
      changes.push({
        description: `drop attribute ${c.name}.${gone.name}`,
        destructive: true,
        why: 'its values would be lost',
        sql: [`ALTER TABLE ${table} DROP COLUMN ${quoteIdent(gone.name)}`],
      });
    }
  }
  for (const gone of before.values()) {
    changes.push({
      description: `drop class ${gone.name}`,
      destructive: true,
      why: 'its rows would be lost',
      sql: [`DROP TABLE ${quoteIdent(gone.name)}`],
    });
  }
  return changes;
}
