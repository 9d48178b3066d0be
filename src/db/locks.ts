/**
 * The advisory locks of a replica database, named once. Each is taken for the rest of a
 * transaction (pg_advisory_xact_lock), so a crash or a rollback always lets go.
 *
 * The one lock order: a transaction that needs more than one takes them in this file's
 * order (a slave's apply lock, the model lock, the numbering lock), and takes them before
 * any row or table lock. A save on the master takes the numbering lock first of all; a
 * deploy takes the model lock, then the numbering lock, and only then changes tables:
 * neither can hold what the other waits for (a save taking the model row, then the table,
 * against a deploy holding the table and wanting the model row, deadlocked before).
 */
import type { Transaction } from './database';

export const LOCKS = {
  /** A slave's appliers (sync loop, a save waiting for its own block): one at a time. */
  slaveApply: 'lessonplan.slave-apply',
  /** Deploying a model (master or slave): one deploy at a time. */
  model: 'lessonplan.model',
  /** The master's commit order: a save holds it from its first read to its commit, a deploy from before its DDL. */
  numbering: 'lessonplan.commitblock-order',
} as const;

export async function lockForTransaction(tx: Transaction, lock: keyof typeof LOCKS): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [LOCKS[lock]], { prepared: 'lp_lock_for_transaction' });
}
