/**
 * The master's commitblocks: a save applies its changes and appends its block in one
 * transaction; blocks are read back in sequence order.
 *
 * Why no block is ever skipped: sequence numbers taken from a sequence become visible
 * in commit order, not number order (save 7 can commit after save 8, and a slave that
 * already read 8 would skip 7). Here the number is taken last, under a transaction-wide
 * advisory lock held until commit, as max(seq) + 1: a later save can only number itself
 * after the earlier one has committed, so visibility order is number order. Only the
 * tail of each save (number, insert, commit) is serialized; the business writes run
 * concurrently.
 */
import type { Database } from '../db/database';
import { applyObjectChanges } from '../model/objectChanges';
import type { CommitBlock, SaveRequest } from '../shared/commitblock';
import type { Model } from '../shared/model';

const ORDER_LOCK = 'lessonplan.commitblock-order';

export class ModelMismatch extends Error {
  override readonly name = 'ModelMismatch';
}

export interface SaveResult {
  seq: number;
  /** The idempotency key was saved before: this is the first save's number, nothing changed now. */
  duplicate: boolean;
}

export async function saveOnMaster(db: Database, request: SaveRequest): Promise<SaveResult> {
  const earlier = async () => {
    const { rows } = await db.query<{ seq: string }>('SELECT seq FROM lp_commitblocks WHERE idempotency_key = $1', [request.idempotencyKey]);
    return rows[0] ? { seq: Number(rows[0].seq), duplicate: true } : undefined;
  };
  const seen = await earlier();
  if (seen) return seen;
  try {
    return await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ checksum: string; model: Model }>('SELECT checksum, model FROM lp_models WHERE current FOR SHARE');
      const current = rows[0];
      if (!current) throw new ModelMismatch('the master has no model deployed yet; deploy one first');
      if (current.checksum !== request.modelChecksum) {
        throw new ModelMismatch(
          `the save is made under model ${request.modelChecksum.slice(0, 12)}, but the master is at ${current.checksum.slice(0, 12)}; reload the model and save again`,
        );
      }
      await applyObjectChanges(tx, current.model, request.changes);
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [ORDER_LOCK]);
      const next = await tx.query<{ seq: string }>(
        `INSERT INTO lp_commitblocks (seq, model_checksum, changes, origin, idempotency_key, committed_at)
         SELECT coalesce(max(seq), 0) + 1, $1, $2, $3, $4, now() FROM lp_commitblocks
         RETURNING seq`,
        [request.modelChecksum, JSON.stringify(request.changes), request.origin, request.idempotencyKey],
      );
      return { seq: Number(next.rows[0]!.seq), duplicate: false };
    });
  } catch (err) {
    // The same key saved concurrently: the other save won; its number is the answer.
    if ((err as { code?: string }).code === '23505') {
      const other = await earlier();
      if (other) return other;
    }
    throw err;
  }
}

/** Blocks after `after`, in order, at most `limit`. */
export async function blocksAfter(db: Database, after: number, limit: number): Promise<CommitBlock[]> {
  const { rows } = await db.query<{
    seq: string;
    model_checksum: string;
    changes: CommitBlock['changes'];
    origin: string;
    idempotency_key: string;
    committed_at: Date;
  }>('SELECT seq, model_checksum, changes, origin, idempotency_key, committed_at FROM lp_commitblocks WHERE seq > $1 ORDER BY seq LIMIT $2', [
    after,
    limit,
  ]);
  return rows.map((r) => ({
    seq: Number(r.seq),
    modelChecksum: r.model_checksum,
    changes: r.changes,
    origin: r.origin,
    idempotencyKey: r.idempotency_key,
    committedAt: r.committed_at.toISOString(),
  }));
}
