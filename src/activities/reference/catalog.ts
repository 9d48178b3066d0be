/**
 * The reference database's catalog: inbox items become rows (upserts, a batch per
 * transaction), PostgreSQL keeps their full-text index (a generated tsvector with a GIN
 * index), and every row and search term a change touches is noted as pending, so the
 * next lesson rewrites exactly those files.
 */
import { z } from 'zod';
import type { Database, Transaction } from '../../db/database';
import { EXTERNAL_ID_PATTERN, type ItemAnswer, type ItemKind, type SearchHit } from '../../shared/subjectMatter';
import type { TakenItem } from './inbox';

const text = (max: number) => z.string().trim().min(1).max(max);
const payloadSchemas = {
  record: z.strictObject({
    title: text(500),
    fields: z.record(z.string().max(100), z.union([z.string().max(10_000), z.number(), z.boolean(), z.null()])),
  }),
  document: z.strictObject({ title: text(500), body: text(1_000_000) }),
} as const;

export interface CatalogRow {
  subject: string;
  externalId: string;
  kind: ItemKind;
  title: string;
  body: string;
  fields: Record<string, string | number | boolean | null>;
  inboxId: number;
}

/** Checks an inbox item; returns the row to upsert, or why it is refused. */
export function validateItem(subject: string, item: TakenItem): { row: CatalogRow } | { reason: string } {
  if (!EXTERNAL_ID_PATTERN.test(item.externalId)) {
    return { reason: `external id "${item.externalId.slice(0, 80)}" is not usable: letters, digits, ".", "_" and "-" only, at most 128` };
  }
  const parsed = payloadSchemas[item.kind].safeParse(item.payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { reason: `payload of a ${item.kind}: ${issue.path.join('.') || '(top)'}: ${issue.message}` };
  }
  const p = parsed.data as { title: string; body?: string; fields?: CatalogRow['fields'] };
  return {
    row: { subject, externalId: item.externalId, kind: item.kind, title: p.title, body: p.body ?? '', fields: p.fields ?? {}, inboxId: item.inboxId },
  };
}

export function catalogOf(db: Database) {
  return {
    /**
     * Upserts rows in one transaction, noting the rows and the terms (before and after)
     * as pending. A row PostgreSQL will not take (more distinct words than its 1 MB
     * search index entry holds, say) is found and named. With `refuse`, it is left out
     * and returned with the reason while the rest go in, and the caller marks it failed
     * in the inbox (so a resume does not meet it again); without, nothing goes in and the
     * error (`UnstorableRows`) names it.
     */
    async upsert(rows: CatalogRow[], options: { refuse?: boolean } = {}): Promise<{ refused: RefusedRow[] }> {
      if (rows.length === 0) return { refused: [] };
      return db.transaction(async (tx) => {
        const savepoint = async <T>(work: () => Promise<T>): Promise<T> => {
          await tx.query('SAVEPOINT catalog_rows');
          try {
            const result = await work();
            await tx.query('RELEASE SAVEPOINT catalog_rows');
            return result;
          } catch (err) {
            await tx.query('ROLLBACK TO SAVEPOINT catalog_rows');
            throw err;
          }
        };
        // The last item for an id wins, as it would have applied one after the other.
        let stored = [...new Map(rows.map((r) => [rowKey(r), r])).values()];
        await notePendingTerms(tx, stored);
        const refused: RefusedRow[] = [];
        try {
          await savepoint(() => upsertRows(tx, stored));
        } catch (err) {
          if (!isRowProblem(err)) throw err;
          // One row at a time, in inbox order, to find the rows PostgreSQL refuses.
          const storedKeys = new Set<string>();
          for (const row of rows) {
            try {
              await savepoint(() => upsertRows(tx, [row]));
              storedKeys.add(rowKey(row));
            } catch (rowErr) {
              if (!isRowProblem(rowErr)) throw rowErr;
              refused.push({ inboxId: row.inboxId, externalId: row.externalId, reason: refusalReason(row, rowErr) });
            }
          }
          if (refused.length > 0 && !options.refuse) throw new UnstorableRows(refused);
          stored = stored.filter((r) => storedKeys.has(rowKey(r)));
        }
        if (stored.length === 0) return { refused };
        await notePendingTerms(tx, stored);
        await tx.query('INSERT INTO pending_items (subject, external_id) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING', [
          stored.map((r) => r.subject),
          stored.map((r) => r.externalId),
        ]);
        return { refused };
      });
    },

    /** Pending rows after `after` (keyset), with their current content (null: no longer in the catalog). */
    async pendingItems(after: [string, string], limit: number): Promise<{ subject: string; externalId: string; answer: ItemAnswer | null }[]> {
      const { rows } = await db.query<CatalogSqlRow>(
        `SELECT p.subject, p.external_id, c.kind, c.title, c.body, c.fields FROM pending_items p
         LEFT JOIN catalog c USING (subject, external_id)
         WHERE (p.subject, p.external_id) > ($1, $2) ORDER BY p.subject, p.external_id LIMIT $3`,
        [after[0], after[1], limit],
      );
      return rows.map((r) => ({ subject: r.subject, externalId: r.external_id, answer: r.kind ? toAnswer(r) : null }));
    },

    async pendingTerms(after: string, limit: number): Promise<string[]> {
      const { rows } = await db.query<{ term: string }>('SELECT term FROM pending_terms WHERE term > $1 ORDER BY term LIMIT $2', [after, limit]);
      return rows.map((r) => r.term);
    },

    /** Every row holding each term, best matches first (title words weigh more). */
    async hits(terms: string[]): Promise<Map<string, SearchHit[]>> {
      const { rows } = await db.query<{ term: string; subject: string; external_id: string; title: string }>(
        `SELECT t.term, c.subject, c.external_id, c.title
         FROM unnest($1::text[]) AS t(term)
         CROSS JOIN LATERAL (SELECT quote_literal(t.term)::tsquery AS q) AS query
         JOIN catalog c ON c.search @@ query.q
         ORDER BY t.term, ts_rank(c.search, query.q) DESC, c.subject, c.external_id`,
        [terms],
      );
      const hits = new Map<string, SearchHit[]>(terms.map((t) => [t, []]));
      for (const r of rows) hits.get(r.term)!.push({ subject: r.subject, id: r.external_id, title: r.title });
      return hits;
    },

    /** Rows for the proof-reading: the newest pending ones of a subject, or a sample of unchanged ones. */
    async sample(subject: string, which: 'pending' | 'unchanged', limit: number): Promise<(ItemAnswer & { titleTerms: string[] })[]> {
      // titleTerms: the words of the title as the index holds them (weight A), stop words left out.
      const { rows } = await db.query<CatalogSqlRow & { title_terms: string[] }>(
        which === 'pending'
          ? `SELECT c.*, tsvector_to_array(ts_filter(c.search, '{a}')) AS title_terms
             FROM catalog c JOIN pending_items p USING (subject, external_id) WHERE c.subject = $1 ORDER BY c.inbox_id DESC LIMIT $2`
          : `SELECT c.*, tsvector_to_array(ts_filter(c.search, '{a}')) AS title_terms FROM catalog c WHERE c.subject = $1
               AND NOT EXISTS (SELECT 1 FROM pending_items p WHERE p.subject = c.subject AND p.external_id = c.external_id)
             ORDER BY random() LIMIT $2`,
        [subject, limit],
      );
      return rows.map((r) => ({ ...toAnswer(r), titleTerms: r.title_terms }));
    },

    async pendingCount(subject?: string): Promise<number> {
      const { rows } = await db.query<{ n: string }>(
        subject ? 'SELECT count(*) AS n FROM pending_items WHERE subject = $1' : 'SELECT count(*) AS n FROM pending_items',
        subject ? [subject] : [],
      );
      return Number(rows[0]!.n);
    },

    async pendingByKind(): Promise<{ records: number; documents: number }> {
      const { rows } = await db.query<{ kind: ItemKind; n: string }>(
        'SELECT c.kind, count(*) AS n FROM pending_items p JOIN catalog c USING (subject, external_id) GROUP BY c.kind',
      );
      const count = (kind: ItemKind) => Number(rows.find((r) => r.kind === kind)?.n ?? 0);
      return { records: count('record'), documents: count('document') };
    },
  };
}

/** A catalog row as SQL returns it (kind null: a pending row no longer in the catalog). */
type CatalogSqlRow = {
  subject: string;
  external_id: string;
  kind: ItemKind | null;
  title: string;
  body: string;
  fields: CatalogRow['fields'];
};

function toAnswer(r: CatalogSqlRow): ItemAnswer {
  return r.kind === 'document'
    ? { subject: r.subject, id: r.external_id, kind: 'document', title: r.title, body: r.body }
    : { subject: r.subject, id: r.external_id, kind: 'record', title: r.title, fields: r.fields };
}

/** An item the catalog could not take, and why (in words for the inbox's failure column). */
export interface RefusedRow {
  inboxId: number;
  externalId: string;
  reason: string;
}

/** Rows PostgreSQL will not take, named with the reason; nothing of their batch was stored. */
export class UnstorableRows extends Error {
  override readonly name = 'UnstorableRows';
  constructor(readonly refused: RefusedRow[]) {
    super(
      `${refused.length === 1 ? 'an inbox item' : `${refused.length} inbox items`} cannot go into the reference database (nothing of the batch was stored): ${refused
        .slice(0, 5)
        .map((r) => `item ${r.inboxId} (${r.externalId}): ${r.reason}`)
        .join('; ')}`,
    );
  }
}

const rowKey = (r: { subject: string; externalId: string }) => `${r.subject}\u0000${r.externalId}`;

/** Notes every term the rows hold now (in the catalog) as pending. */
function notePendingTerms(tx: Transaction, rows: CatalogRow[]) {
  return tx.query(
    `INSERT INTO pending_terms (term)
     SELECT DISTINCT unnest(tsvector_to_array(c.search)) FROM catalog c
     JOIN unnest($1::text[], $2::text[]) AS k(subject, external_id) USING (subject, external_id)
     ON CONFLICT DO NOTHING`,
    [rows.map((r) => r.subject), rows.map((r) => r.externalId)],
  );
}

/** Inserts or updates the rows (one per id); an older inbox item never overwrites a newer one. */
function upsertRows(tx: Transaction, rows: CatalogRow[]) {
  return tx.query(
    `INSERT INTO catalog (subject, external_id, kind, title, body, fields, inbox_id)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::bigint[])
     ON CONFLICT (subject, external_id) DO UPDATE SET
       kind = EXCLUDED.kind, title = EXCLUDED.title, body = EXCLUDED.body, fields = EXCLUDED.fields,
       inbox_id = EXCLUDED.inbox_id, updated_at = now()
     WHERE catalog.inbox_id <= EXCLUDED.inbox_id`,
    [
      rows.map((r) => r.subject),
      rows.map((r) => r.externalId),
      rows.map((r) => r.kind),
      rows.map((r) => r.title),
      rows.map((r) => r.body),
      rows.map((r) => JSON.stringify(r.fields)),
      rows.map((r) => r.inboxId),
    ],
  );
}

/**
 * An error caused by what a row holds, not by the database or the connection: a
 * program limit (54xxx, e.g. "string is too long for tsvector") or a data exception
 * (22xxx). Retrying cannot fix it; leaving the row out can.
 */
function isRowProblem(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('54') || code.startsWith('22'));
}

function refusalReason(row: CatalogRow, err: unknown): string {
  const message = (err as Error).message;
  if (/too long for tsvector/.test(message)) {
    return `this ${row.kind} has more distinct words than the search index holds for one item (PostgreSQL: ${message}): split it into smaller ${row.kind}s`;
  }
  return `PostgreSQL refused this ${row.kind}: ${message}`;
}
