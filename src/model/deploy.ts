/**
 * Deploying a model to a database: the evolution from its current model, applied with
 * the model record in one transaction (under an advisory lock), so the schema and the
 * recorded model never disagree. Destructive changes are refused, naming each one and
 * why, unless explicitly allowed; a dry run returns the plan and changes nothing.
 */
import type { Database, Transaction } from '../db/database';
import { lockForTransaction } from '../db/locks';
import { migrate, readMigrations } from '../db/migrate';
import type { Model } from '../shared/model';
import path from 'node:path';
import { modelChecksum } from './checksum';
import { planEvolution, type SchemaChange } from './evolution';

export const REPLICA_MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../db/migrations/replica');

/** The tables every master and slave database has (models; commitblocks). */
export function migrateReplica(db: Database) {
  return migrate(db, 'replica', readMigrations(REPLICA_MIGRATIONS_DIR));
}

export class DestructiveModelChange extends Error {
  override readonly name = 'DestructiveModelChange';
  constructor(readonly changes: SchemaChange[]) {
    super(
      `the new model needs ${changes.length === 1 ? 'a destructive change' : `${changes.length} destructive changes`}, refused: ${changes
        .map((c) => `${c.description} (${c.why})`)
        .join('; ')}; allow destructive changes (lessonplan model deploy --allow-destructive) if that is intended`,
    );
  }
}

export interface DeployResult {
  checksum: string;
  previous: string | null;
  changes: SchemaChange[];
  /** False for a dry run, or when the model was already current. */
  applied: boolean;
}

export async function currentModel(db: Database): Promise<{ checksum: string; model: Model } | null> {
  const { rows } = await db.query<{ checksum: string; model: Model }>('SELECT checksum, model FROM lp_models WHERE current');
  return rows[0] ?? null;
}

export async function deployModel(db: Database, model: Model, options: { allowDestructive?: boolean; dryRun?: boolean } = {}): Promise<DeployResult> {
  return db.transaction((tx) => deployModelIn(tx, model, options));
}

/** deployModel inside a transaction the caller holds (a slave evolves under its apply lock). */
export async function deployModelIn(
  tx: Transaction,
  model: Model,
  options: { allowDestructive?: boolean; dryRun?: boolean } = {},
): Promise<DeployResult> {
  const checksum = modelChecksum(model);
  await lockForTransaction(tx, 'model');
  // Before any table: saves hold the numbering lock from their first read (src/db/locks.ts).
  if (!options.dryRun) await lockForTransaction(tx, 'numbering');
  const { rows } = await tx.query<{ checksum: string; model: Model }>('SELECT checksum, model FROM lp_models WHERE current');
  const current = rows[0] ?? null;
  if (current?.checksum === checksum) return { checksum, previous: checksum, changes: [], applied: false };
  const changes = planEvolution(current?.model ?? null, model);
  // A dry run shows every change, destructive ones included, and refuses nothing.
  if (options.dryRun) return { checksum, previous: current?.checksum ?? null, changes, applied: false };
  const destructive = changes.filter((c) => c.destructive);
  if (destructive.length > 0 && !options.allowDestructive) throw new DestructiveModelChange(destructive);
  for (const change of changes) for (const sql of change.sql) await tx.query(sql);
  await tx.query('UPDATE lp_models SET current = false WHERE current');
  await tx.query(
    `INSERT INTO lp_models (checksum, model, current) VALUES ($1, $2, true)
     ON CONFLICT (checksum) DO UPDATE SET current = true, deployed_at = now()`,
    [checksum, JSON.stringify(model)],
  );
  return { checksum, previous: current?.checksum ?? null, changes, applied: true };
}
