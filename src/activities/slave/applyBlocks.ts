/**
 * Applying commitblocks to a slave's database. A run of blocks made under one model is
 * applied in one transaction: business changes and commitblock rows together, so a
 * block is either fully applied (its row exists) or not at all. The slave's high-water
 * mark is the newest row of its own commitblock table, never a number kept elsewhere,
 * so a slave restored from a master backup resumes from the blocks the backup holds.
 *
 * Several appliers may run at once on one slave (the sync loop, a save waiting for its
 * own block, a retried activity whose first attempt is not dead yet): an advisory lock
 * serializes them, and blocks at or below the mark are skipped, so each block is
 * applied exactly once.
 */
import type { Database, Transaction } from '../../db/database';
import { deployModelIn, type DeployResult } from '../../model/deploy';
import { applyObjectChanges } from '../../model/objectChanges';
import type { CommitBlock } from '../../shared/commitblock';
import type { Model } from '../../shared/model';

const APPLY_LOCK = 'lessonplan.slave-apply';

export class BlockGap extends Error {
  override readonly name = 'BlockGap';
}

export class SlaveModelMismatch extends Error {
  override readonly name = 'SlaveModelMismatch';
}

export async function highWaterMark(db: Transaction): Promise<number> {
  const { rows } = await db.query<{ hwm: string | null }>('SELECT max(seq) AS hwm FROM lp_commitblocks');
  return Number(rows[0]?.hwm ?? 0);
}

/** The slave's newest block: its number and who made it (null: the slave has none). */
export async function markOf(db: Transaction): Promise<{ seq: number; origin: string; idempotencyKey: string } | null> {
  const { rows } = await db.query<{ seq: string; origin: string; idempotency_key: string }>(
    'SELECT seq, origin, idempotency_key FROM lp_commitblocks ORDER BY seq DESC LIMIT 1',
  );
  return rows[0] ? { seq: Number(rows[0].seq), origin: rows[0].origin, idempotencyKey: rows[0].idempotency_key } : null;
}

/**
 * The model a slave's database records under `checksum`, read once: a checksum names one
 * model there for good (rows of lp_models are added, never rewritten), and reading and
 * parsing it for every batch would cost a small batch as much as its own rows.
 */
const models = new WeakMap<Database, { checksum: string; model: Model }>();
async function modelOf(db: Database, tx: Transaction, checksum: string): Promise<Model> {
  const known = models.get(db);
  if (known?.checksum === checksum) return known.model;
  const { rows } = await tx.query<{ model: Model }>('SELECT model FROM lp_models WHERE checksum = $1', [checksum]);
  models.set(db, { checksum, model: rows[0]!.model });
  return rows[0]!.model;
}

/** Applies blocks (all under one model, in order) after the slave's mark; returns how many and the new mark. */
export async function applyBlocks(
  db: Database,
  blocks: CommitBlock[],
): Promise<{ applied: number; highWaterMark: number; lastCommittedAt: string | null }> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [APPLY_LOCK], { prepared: 'lp_slave_apply_lock' });
    // After the lock, in a statement of its own: its snapshot sees what the appliers before this one committed.
    const { rows } = await tx.query<{ hwm: string | null; checksum: string | null }>(
      'SELECT (SELECT max(seq) FROM lp_commitblocks) AS hwm, (SELECT checksum FROM lp_models WHERE current FOR SHARE) AS checksum',
      [],
      { prepared: 'lp_slave_apply_position' },
    );
    const hwm = Number(rows[0]!.hwm ?? 0);
    const todo = blocks.filter((b) => b.seq > hwm);
    if (todo.length === 0) return { applied: 0, highWaterMark: hwm, lastCommittedAt: null };
    todo.forEach((b, i) => {
      if (b.seq !== hwm + 1 + i) {
        throw new BlockGap(`the slave is at block ${hwm + i} and the next block delivered is ${b.seq}: refusing to skip blocks`);
      }
    });
    const checksum = todo[0]!.modelChecksum;
    if (todo.some((b) => b.modelChecksum !== checksum)) throw new Error('applyBlocks takes blocks of one model at a time');
    const current = rows[0]!.checksum;
    if (current !== checksum) {
      throw new SlaveModelMismatch(
        `block ${todo[0]!.seq} is made under model ${checksum.slice(0, 12)}, the slave is at ${current?.slice(0, 12) ?? 'no model'}`,
      );
    }
    // All changes of the run at once: consecutive rows of one class go in one statement. The
    // values are the master's, written as it wrote them (its checks were made when it took them).
    await applyObjectChanges(
      tx,
      await modelOf(db, tx, checksum),
      todo.flatMap((b) => b.changes),
      { checkValues: false },
    );
    await tx.query(
      `INSERT INTO lp_commitblocks (seq, model_checksum, changes, origin, idempotency_key, committed_at)
       SELECT seq, model_checksum, changes, origin, idempotency_key, committed_at
         FROM jsonb_to_recordset($1::jsonb) AS b(seq bigint, model_checksum text, changes jsonb, origin text, idempotency_key text, committed_at timestamptz)`,
      [
        JSON.stringify(
          todo.map((b) => ({
            seq: b.seq,
            model_checksum: b.modelChecksum,
            changes: b.changes,
            origin: b.origin,
            idempotency_key: b.idempotencyKey,
            committed_at: b.committedAt,
          })),
        ),
      ],
    );
    const last = todo.at(-1)!;
    return { applied: todo.length, highWaterMark: last.seq, lastCommittedAt: last.committedAt };
  });
}

/**
 * Evolves the slave's schema to `model` under the apply lock, only if `needed(mark)` still
 * holds for the slave's mark at that moment. Another applier (a save's catch-up) may have
 * gone further meanwhile and evolved past this model; an evolution decided on the older
 * view would take the schema back. Returns null when it was not needed any more.
 * `checksum`: the master's name for the model, which the slave records it under.
 */
export async function evolveSlave(
  db: Database,
  model: Model,
  needed: (highWaterMark: number) => boolean,
  checksum?: string,
): Promise<DeployResult | null> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [APPLY_LOCK]);
    if (!needed(await highWaterMark(tx))) return null;
    // The master decided on destructive changes when it accepted the model; the slave follows.
    const result = await deployModelIn(tx, model, { allowDestructive: true });
    if (checksum === undefined || result.checksum === checksum) return result;
    // The master recorded this model under an earlier version's (locale-sorted) checksum, and its
    // blocks carry that one: the slave must be at the model under the same name to apply them.
    await tx.query('UPDATE lp_models SET current = false WHERE current');
    await tx.query(
      `INSERT INTO lp_models (checksum, model, current) VALUES ($1, $2, true)
       ON CONFLICT (checksum) DO UPDATE SET current = true, deployed_at = now()`,
      [checksum, JSON.stringify(model)],
    );
    return { ...result, checksum };
  });
}

/** Consecutive blocks grouped by the model they were made under. */
export function runsByModel(blocks: CommitBlock[]): CommitBlock[][] {
  const runs: CommitBlock[][] = [];
  for (const block of blocks) {
    const run = runs.at(-1);
    if (run && run[0]!.modelChecksum === block.modelChecksum) run.push(block);
    else runs.push([block]);
  }
  return runs;
}
