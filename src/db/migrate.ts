/**
 * Versioned schema migrations: numbered SQL files applied in order, recorded with a
 * checksum in `schema_migrations`. All pending files run in one transaction, so a
 * failing file leaves the schema exactly as it was before the run.
 *
 * A small runner rather than a migration tool because lessonplan migrates several
 * databases (operational, reference, master, slaves) from inside its workers and
 * tests, through the same pool as everything else; it needs exactly: order, one
 * transaction per file, a lock so two workers starting together do not race, and a
 * refusal when an applied file was edited or the database is newer than the code.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Database } from './database';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

/** Reads `NNN_name.sql` files from a folder, in version order. */
export function readMigrations(dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((file) => {
      const match = FILE_PATTERN.exec(file);
      if (!match) throw new MigrationError(`${path.join(dir, file)}: expected a name like 001_create_tables.sql`);
      const sql = readFileSync(path.join(dir, file), 'utf8');
      return { version: Number(match[1]), name: match[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new MigrationError(`${dir}: migration versions must be 1, 2, 3, ... without gaps; found ${m.version} at position ${i + 1}`);
  });
  return migrations;
}

export interface MigrationResult {
  applied: number[];
  current: number;
}

/**
 * Brings `db` up to the newest migration of `set`. Safe to call from several
 * processes at once: a transaction-scoped advisory lock serializes them.
 */
export async function migrate(db: Database, set: string, migrations: Migration[]): Promise<MigrationResult> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`lessonplan.migrate.${set}`]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      migration_set text NOT NULL,
      version integer NOT NULL,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (migration_set, version))`);
    const { rows } = await tx.query<{ version: number; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM schema_migrations WHERE migration_set = $1 ORDER BY version',
      [set],
    );
    for (const row of rows) {
      const known = migrations[row.version - 1];
      if (!known) {
        throw new MigrationError(
          `${db.label}: ${set} schema is at version ${rows.at(-1)!.version}, newer than this lessonplan knows (${migrations.length}); upgrade lessonplan instead of running an older one against it`,
        );
      }
      if (known.checksum !== row.checksum) {
        throw new MigrationError(
          `${db.label}: ${set} migration ${row.version} (${row.name}) was changed after it was applied; add a new migration instead of editing an applied one`,
        );
      }
    }
    const applied: number[] = [];
    for (const m of migrations.slice(rows.length)) {
      try {
        await tx.query(m.sql);
      } catch (err) {
        throw new MigrationError(`${db.label}: ${set} migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
      }
      await tx.query('INSERT INTO schema_migrations (migration_set, version, name, checksum) VALUES ($1, $2, $3, $4)', [
        set,
        m.version,
        m.name,
        m.checksum,
      ]);
      applied.push(m.version);
    }
    return { applied, current: migrations.length };
  });
}

/** The operational database's migrations, shipped in src/db/migrations/operational. */
export const OPERATIONAL_MIGRATIONS_DIR = path.resolve(import.meta.dirname, 'migrations/operational');

export function migrateOperational(db: Database): Promise<MigrationResult> {
  return migrate(db, 'operational', readMigrations(OPERATIONAL_MIGRATIONS_DIR));
}

/** The reference database's migrations: catalog, full-text index, pending changes, filed lessons. */
export const REFERENCE_MIGRATIONS_DIR = path.resolve(import.meta.dirname, 'migrations/reference');

export function migrateReference(db: Database): Promise<MigrationResult> {
  return migrate(db, 'reference', readMigrations(REFERENCE_MIGRATIONS_DIR));
}
