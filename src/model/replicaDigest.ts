/**
 * The divergence check: does a slave hold exactly what its master holds? Each class's
 * table is summed up as a row count and a digest (md5 over the md5 of every row, in key
 * order), computed the same way on both sides; where the digests differ, both tables are
 * walked in key order to name the first key whose rows differ.
 *
 * Why rows are hashed as JSON built in the model's attribute order rather than as the
 * row's own text: a slave's columns may sit in another physical order than the master's
 * (a slave made from an older backup evolves its schema itself), and a row's text follows
 * the physical order. Timestamps are rendered in UTC, whatever the server's time zone.
 */
import type { Database, Transaction } from '../db/database';
import type { ClassSpec, Model } from '../shared/model';
import { quoteIdent } from './evolution';

export interface TableDigest {
  table: string;
  rows: number;
  digest: string;
}

export interface TableDifference {
  table: string;
  master: { rows: number; digest: string };
  slave: { rows: number; digest: string } | null;
  /** The first key, in key order, whose row differs or exists on one side only (null when not searched: the table is missing). */
  firstKey: Record<string, unknown> | null;
  why: string;
}

/** Rows walked per query while looking for the first difference. */
const PAGE = 1_000;

const rowJson = (c: ClassSpec) =>
  `json_build_object(${c.attributes.map((a) => `'${a.name.replace(/'/g, "''")}', t.${quoteIdent(a.name)}`).join(', ')})::text`;
const keyColumns = (c: ClassSpec) => c.key.map((k) => `t.${quoteIdent(k)}`).join(', ');

/** Every class's row count and digest, read in one snapshot. */
export async function tableDigests(db: Database, model: Model): Promise<TableDigest[]> {
  return db.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    await tx.query("SET LOCAL TimeZone = 'UTC'");
    const digests: TableDigest[] = [];
    for (const c of [...model.classes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const { rows } = await tx.query<{ n: string; digest: string }>(
        `SELECT count(*) AS n, md5(coalesce(string_agg(md5(${rowJson(c)}), '' ORDER BY ${keyColumns(c)}), '')) AS digest FROM ${quoteIdent(c.name)} t`,
      );
      digests.push({ table: c.name, rows: Number(rows[0]!.n), digest: rows[0]!.digest });
    }
    return digests;
  });
}

async function tableExists(db: Database, table: string): Promise<boolean> {
  const { rows } = await db.query<{ found: boolean }>('SELECT to_regclass(quote_ident($1)) IS NOT NULL AS found', [table]);
  return rows[0]!.found;
}

interface KeyedRow {
  /** The key's values as PostgreSQL's text: exact for every type (a bigint stays whole). */
  key: string[];
  hash: string;
}

/** `($1::integer, $2::text)`: the key's values given as text, cast back to the key's types (names from the model's fixed list). */
const typedKey = (c: ClassSpec, from: number) =>
  `(${c.key.map((k, i) => `$${from + i}::${c.attributes.find((a) => a.name === k)!.type}`).join(', ')})`;

/** One page of (key, row hash) after `after` (exclusive), in key order. */
async function page(tx: Transaction, c: ClassSpec, after: string[] | null): Promise<KeyedRow[]> {
  const keys = keyColumns(c);
  const where = after ? `WHERE (${keys}) > ${typedKey(c, 1)}` : '';
  const { rows } = await tx.query<{ k: string[]; h: string }>(
    `SELECT ARRAY[${c.key.map((k) => `t.${quoteIdent(k)}::text`).join(', ')}] AS k, md5(${rowJson(c)}) AS h
       FROM ${quoteIdent(c.name)} t ${where} ORDER BY ${keys} LIMIT ${PAGE}`,
    after ?? [],
  );
  return rows.map((r) => ({ key: r.k, hash: r.h }));
}

/**
 * The first key where the two tables differ, walking both in key order. Both sides order
 * keys with the same column types; each is read in its own snapshot, so run it while
 * the slave has caught up and nothing is saved (the check's caller waits for that).
 */
async function firstDifferingKey(master: Database, slave: Database, c: ClassSpec): Promise<string[] | null> {
  const inSnapshot = <T>(db: Database, work: (tx: Transaction) => Promise<T>) =>
    db.transaction(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      await tx.query("SET LOCAL TimeZone = 'UTC'");
      return work(tx);
    });
  let afterMaster: string[] | null = null;
  let afterSlave: string[] | null = null;
  let m: KeyedRow[] = [];
  let s: KeyedRow[] = [];
  for (;;) {
    if (m.length === 0) m = await inSnapshot(master, (tx) => page(tx, c, afterMaster));
    if (s.length === 0) s = await inSnapshot(slave, (tx) => page(tx, c, afterSlave));
    if (m.length === 0 && s.length === 0) return null;
    if (m.length === 0) return s[0]!.key;
    if (s.length === 0) return m[0]!.key;
    const a = m[0]!;
    const b = s[0]!;
    if (a.key.some((v, i) => v !== b.key[i])) {
      // The smaller key exists on one side only: the master's database says which is smaller, in the order both walked.
      const { rows } = await master.query<{ first: boolean }>(`SELECT ${typedKey(c, 1)} < ${typedKey(c, 1 + c.key.length)} AS first`, [
        ...a.key,
        ...b.key,
      ]);
      return rows[0]!.first ? a.key : b.key;
    }
    if (a.hash !== b.hash) return a.key;
    afterMaster = a.key;
    afterSlave = b.key;
    m.shift();
    s.shift();
  }
}

/** Compares every class's table, master against slave; an empty list means they hold the same rows. */
export async function compareReplicas(master: Database, slave: Database, model: Model): Promise<TableDifference[]> {
  const [ours, theirs] = await Promise.all([tableDigests(master, model), digestsOfPresentTables(slave, model)]);
  const differences: TableDifference[] = [];
  for (const m of ours) {
    const s = theirs.get(m.table);
    if (!s) {
      differences.push({ table: m.table, master: m, slave: null, firstKey: null, why: `the slave has no table ${m.table}` });
      continue;
    }
    if (s.rows === m.rows && s.digest === m.digest) continue;
    const c = model.classes.find((x) => x.name === m.table)!;
    const key = await firstDifferingKey(master, slave, c);
    differences.push({
      table: m.table,
      master: m,
      slave: s,
      firstKey: key ? Object.fromEntries(c.key.map((k, i) => [k, key[i]])) : null,
      why: `${m.rows} rows on the master, ${s.rows} on the slave; digests ${m.digest.slice(0, 12)} and ${s.digest.slice(0, 12)}`,
    });
  }
  return differences;
}

/** The slave's digests, skipping (rather than failing on) tables it does not have. */
async function digestsOfPresentTables(slave: Database, model: Model): Promise<Map<string, TableDigest>> {
  const present: ClassSpec[] = [];
  for (const c of model.classes) if (await tableExists(slave, c.name)) present.push(c);
  return new Map((await tableDigests(slave, { classes: present })).map((d) => [d.table, d]));
}
