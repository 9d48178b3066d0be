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

/** A string literal for SQL (standard_conforming_strings, PostgreSQL's default since 9.1). */
const quoteLiteral = (value: string) => `'${value.replace(/'/g, "''")}'`;

/** The tag of the DO block below; a body that holds it would end the block early. */
const DO_TAG = '$lp_evolution$';

/**
 * Drops the table's primary key, found by the catalog at run time rather than by name:
 * PostgreSQL names it "<table>_pkey" only while that fits in 63 bytes (longer names are
 * truncated), and a table renamed since keeps its old constraint name.
 */
function dropPrimaryKeySql(tableName: string): string {
  const body = `
DECLARE
  t regclass := ${quoteLiteral(quoteIdent(tableName))}::regclass;
  pkey name;
BEGIN
  SELECT conname INTO pkey FROM pg_constraint WHERE conrelid = t AND contype = 'p';
  IF FOUND THEN
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', t, pkey);
  END IF;
END
`;
  if (body.includes(DO_TAG)) throw new Error(`the class name ${JSON.stringify(tableName)} cannot be planned: it holds ${DO_TAG}`);
  return `DO ${DO_TAG}${body}${DO_TAG}`;
}

function addClass(c: ClassSpec): SchemaChange {
  return {
    description: `add class ${c.name} (${c.attributes.length} attributes, key ${c.key.join(', ')})`,
    destructive: false,
    sql: [createTable(c)],
  };
}

function changeKey(old: ClassSpec, c: ClassSpec): SchemaChange {
  return {
    description: `change the key of ${c.name} from (${old.key.join(', ')}) to (${c.key.join(', ')})`,
    destructive: true,
    why: 'existing rows may collide under the new key',
    sql: [dropPrimaryKeySql(c.name), `ALTER TABLE ${quoteIdent(c.name)} ADD PRIMARY KEY (${c.key.map(quoteIdent).join(', ')})`],
  };
}

function addAttribute(c: ClassSpec, a: AttributeSpec): SchemaChange {
  const sql = [`ALTER TABLE ${quoteIdent(c.name)} ADD COLUMN ${columnSql(a)}`];
  if (a.nullable) return { description: `add attribute ${c.name}.${a.name} (${a.type})`, destructive: false, sql };
  return {
    description: `add attribute ${c.name}.${a.name} (${a.type}, not null)`,
    destructive: true,
    why: 'existing rows have no value for it; add it nullable, fill it, then make it not null',
    sql,
  };
}

function changeType(c: ClassSpec, was: AttributeSpec, a: AttributeSpec): SchemaChange {
  const widening = Object.hasOwn(WIDENINGS, was.type) && WIDENINGS[was.type].includes(a.type);
  const column = quoteIdent(a.name);
  return {
    description: `${widening ? 'widen' : 'change'} attribute ${c.name}.${a.name} from ${was.type} to ${a.type}`,
    destructive: !widening,
    ...(widening ? {} : { why: `not every ${was.type} value is a ${a.type} value` }),
    sql: [`ALTER TABLE ${quoteIdent(c.name)} ALTER COLUMN ${column} TYPE ${sqlType(a.type)} USING ${column}::${sqlType(a.type)}`],
  };
}

function changeNullable(c: ClassSpec, a: AttributeSpec): SchemaChange {
  const alter = `ALTER TABLE ${quoteIdent(c.name)} ALTER COLUMN ${quoteIdent(a.name)}`;
  if (a.nullable) return { description: `allow null in ${c.name}.${a.name}`, destructive: false, sql: [`${alter} DROP NOT NULL`] };
  return {
    description: `forbid null in ${c.name}.${a.name}`,
    destructive: true,
    why: 'existing rows may hold null there',
    sql: [`${alter} SET NOT NULL`],
  };
}

function dropAttribute(c: ClassSpec, gone: AttributeSpec): SchemaChange {
  return {
    description: `drop attribute ${c.name}.${gone.name}`,
    destructive: true,
    why: 'its values would be lost',
    sql: [`ALTER TABLE ${quoteIdent(c.name)} DROP COLUMN ${quoteIdent(gone.name)}`],
  };
}

/**
 * The changes of one class that exists in both models, in an order that applies: a new
 * key is made of columns that exist and are NOT NULL, so additions, type changes and new
 * NOT NULLs come before the key change; a column of the old key can lose its NOT NULL or
 * go only once that key is gone, so those come after it.
 */
function changeClass(old: ClassSpec, c: ClassSpec): SchemaChange[] {
  const beforeKey: SchemaChange[] = [];
  const afterKey: SchemaChange[] = [];
  const oldAttrs = new Map(old.attributes.map((a) => [a.name, a]));
  for (const a of c.attributes) {
    const was = oldAttrs.get(a.name);
    oldAttrs.delete(a.name);
    if (!was) {
      beforeKey.push(addAttribute(c, a));
      continue;
    }
    if (was.type !== a.type) beforeKey.push(changeType(c, was, a));
    if (was.nullable !== a.nullable) (a.nullable ? afterKey : beforeKey).push(changeNullable(c, a));
  }
  for (const gone of oldAttrs.values()) afterKey.push(dropAttribute(c, gone));
  const keyChanged = old.key.join(',') !== c.key.join(',');
  return [...beforeKey, ...(keyChanged ? [changeKey(old, c)] : []), ...afterKey];
}

/** The changes that turn `from` (null: an empty database) into `to`, in an order that applies. */
export function planEvolution(from: Model | null, to: Model): SchemaChange[] {
  const changes: SchemaChange[] = [];
  const before = new Map((from?.classes ?? []).map((c) => [c.name, c]));
  for (const c of to.classes) {
    const old = before.get(c.name);
    before.delete(c.name);
    changes.push(...(old ? changeClass(old, c) : [addClass(c)]));
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
