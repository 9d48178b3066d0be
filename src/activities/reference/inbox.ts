/**
 * The subject-matter inbox in the operational database. A lesson takes waiting items
 * by marking them with its id (committed before anything else happens), so an item is
 * taken by exactly one lesson, and a retried step finds the items it already took.
 * An item that cannot be processed is marked failed with the reason, never dropped.
 */
import type { Database } from '../../db/database';
import type { ItemKind } from '../../shared/subjectMatter';

export interface TakenItem {
  inboxId: number;
  kind: ItemKind;
  externalId: string;
  payload: unknown;
}

export function inboxOf(ops: Database) {
  return {
    async countWaiting(subject: string): Promise<number> {
      const { rows } = await ops.query<{ n: string }>(
        'SELECT count(*) AS n FROM inbox WHERE subject = $1 AND taken_at IS NULL AND failed_at IS NULL',
        [subject],
      );
      return Number(rows[0]!.n);
    },

    /** Marks up to `max` waiting items as the lesson's; returns how many the lesson holds for the subject in all. */
    async take(lessonId: string, subject: string, max: number): Promise<number> {
      return ops.transaction(async (tx) => {
        const { rows: held } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM inbox WHERE taken_by = $1 AND subject = $2', [
          lessonId,
          subject,
        ]);
        const room = Math.max(0, max - Number(held[0]!.n));
        if (room > 0) {
          await tx.query(
            `UPDATE inbox SET taken_by = $1, taken_at = now()
             WHERE id IN (SELECT id FROM inbox WHERE subject = $2 AND taken_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)`,
            [lessonId, subject, room],
          );
        }
        const { rows } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM inbox WHERE taken_by = $1 AND subject = $2', [lessonId, subject]);
        return Number(rows[0]!.n);
      });
    },

    /** Gives the items of an abandoned lesson back to the inbox (refused ones stay marked). */
    async release(lessonId: string): Promise<number> {
      const { rowCount } = await ops.query('UPDATE inbox SET taken_by = NULL, taken_at = NULL WHERE taken_by = $1 AND failed_at IS NULL', [lessonId]);
      return rowCount ?? 0;
    },

    /** The lesson's items of a subject, in inbox order, `limit` at a time after `afterId`. */
    async readTaken(lessonId: string, subject: string, afterId: number, limit: number): Promise<TakenItem[]> {
      const { rows } = await ops.query<{ id: string; kind: ItemKind; external_id: string; payload: unknown }>(
        `SELECT id, kind, external_id, payload FROM inbox
         WHERE taken_by = $1 AND subject = $2 AND failed_at IS NULL AND id > $3 ORDER BY id LIMIT $4`,
        [lessonId, subject, afterId, limit],
      );
      return rows.map((r) => ({ inboxId: Number(r.id), kind: r.kind, externalId: r.external_id, payload: r.payload }));
    },

    async markFailed(failures: { inboxId: number; reason: string }[]): Promise<void> {
      if (failures.length === 0) return;
      await ops.query(
        `UPDATE inbox SET failed_at = now(), failure = f.reason
         FROM unnest($1::bigint[], $2::text[]) AS f(id, reason) WHERE inbox.id = f.id AND inbox.failed_at IS NULL`,
        [failures.map((f) => f.inboxId), failures.map((f) => f.reason)],
      );
    },

    /** Items of the lesson refused earlier (a retried step reports them again). */
    async refused(lessonId: string, subject: string): Promise<{ inboxId: number; externalId: string; reason: string }[]> {
      const { rows } = await ops.query<{ id: string; external_id: string; failure: string }>(
        'SELECT id, external_id, failure FROM inbox WHERE taken_by = $1 AND subject = $2 AND failed_at IS NOT NULL ORDER BY id',
        [lessonId, subject],
      );
      return rows.map((r) => ({ inboxId: Number(r.id), externalId: r.external_id, reason: r.failure }));
    },
  };
}

/**
 * The strings of a value (at any depth, and the property names) that hold a NUL
 * character, which PostgreSQL's text and jsonb cannot store: each with its path.
 */
export function nulCharacters(value: unknown, path: (string | number)[] = []): { path: (string | number)[]; inName: boolean }[] {
  if (typeof value === 'string') return value.includes('\u0000') ? [{ path, inName: false }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => nulCharacters(v, [...path, i]));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [
    ...(k.includes('\u0000') ? [{ path: [...path, k], inName: true }] : []),
    ...nulCharacters(v, [...path, k]),
  ]);
}

/** A path as one would write it in JavaScript: payload.fields.author, payload.fields["odd name"], [3]. */
export function describePath(path: readonly (string | number)[]): string {
  return path
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `${i === 0 ? '' : '.'}${k}` : `[${JSON.stringify(k)}]`))
    .join('');
}

/** Why an item cannot be stored, one line per string with a NUL character; empty when it can. */
export function unstorableStrings(item: unknown): string[] {
  return nulCharacters(item).map(
    (n) => `${describePath(n.path)}: ${n.inName ? 'the name contains' : 'contains'} a NUL character (\\u0000), which PostgreSQL cannot store`,
  );
}

/**
 * Drops items into the inbox: what inputting staff, a feed, or the sample data do. All
 * of them or none: one transaction, however many inserts it takes.
 */
export async function dropIntoInbox(
  ops: Database,
  items: { subject: string; kind: ItemKind; externalId: string; payload: unknown }[],
): Promise<number> {
  const unstorable = items.flatMap((item, i) => unstorableStrings(item).map((why) => `[${i}] (${item.externalId}): ${why}`));
  if (unstorable.length > 0) throw new Error(`nothing put in the inbox: ${unstorable.join('; ')}`);
  const batch = 1_000;
  await ops.transaction(async (tx) => {
    for (let i = 0; i < items.length; i += batch) {
      const slice = items.slice(i, i + batch);
      await tx.query(
        `INSERT INTO inbox (subject, kind, external_id, payload)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])`,
        [slice.map((x) => x.subject), slice.map((x) => x.kind), slice.map((x) => x.externalId), slice.map((x) => JSON.stringify(x.payload))],
      );
    }
  });
  return items.length;
}
