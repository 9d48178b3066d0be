import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { openDatabase } from '../src/db/database';
import { migrate, migrateOperational, MigrationError, readMigrations } from '../src/db/migrate';
import { freshDatabase, testStack } from './helpers/stack';

const scratch: string[] = [];
after(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));
const scratchDir = (): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-migrations-'));
  scratch.push(dir);
  return dir;
};

describe('operational database migrations on a real PostgreSQL', async () => {
  const config = await testStack();

  test('a fresh database gets every table; a second run applies nothing', async () => {
    const { db } = await freshDatabase(config, 'ops');
    const first = await migrateOperational(db);
    assert.deepEqual(first.applied, [1, 2, 3]);
    const { rows } = await db.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    assert.deepEqual(
      rows.map((r) => r.table_name),
      ['flags', 'inbox', 'lesson_runs', 'machines', 'reports', 'schema_migrations'],
    );
    const second = await migrateOperational(db);
    assert.deepEqual(second.applied, []);
    assert.equal(second.current, 3);
    const alerted = await db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'reports' AND column_name = 'alerted_at'");
    assert.equal(alerted.rowCount, 1, 'reports remember when they were alerted');
  });

  test('the schema enforces the registry rules: one reference, satellites in a group', async () => {
    const { db } = await freshDatabase(config, 'rules');
    await migrateOperational(db);
    await db.query("INSERT INTO machines (name, role, host) VALUES ('teacher', 'reference', 'h1')");
    await assert.rejects(db.query("INSERT INTO machines (name, role, host) VALUES ('teacher2', 'reference', 'h2')"), /machines_one_reference/);
    await assert.rejects(db.query("INSERT INTO machines (name, role, host) VALUES ('s1', 'satellite', 'h3')"), /satellites_have_a_group/);
    await db.query("INSERT INTO machines (name, role, host, group_name) VALUES ('s1', 'satellite', 'h3', 'boys')");
    await assert.rejects(
      db.query("INSERT INTO inbox (subject, kind, external_id, payload, taken_by) VALUES ('records', 'record', 'r1', '{}', 'lesson-1')"),
      /taken_together/,
    );
  });

  test('two processes migrating at once apply each file once', async () => {
    const { db, url } = await freshDatabase(config, 'race');
    const other = openDatabase(url);
    try {
      const results = await Promise.all([migrateOperational(db), migrateOperational(other)]);
      assert.deepEqual(results.map((r) => r.applied).sort(), [[], [1, 2, 3]]);
      const { rows } = await db.query('SELECT version FROM schema_migrations');
      assert.equal(rows.length, 3);
    } finally {
      await other.close();
    }
  });

  test('a failing migration leaves the schema as it was, and the error names the file', async () => {
    const dir = scratchDir();
    writeFileSync(path.join(dir, '001_first.sql'), 'CREATE TABLE first_table (id int);');
    writeFileSync(path.join(dir, '002_broken.sql'), 'CREATE TABLE second_table (id int); SELECT no_such_column FROM first_table;');
    const { db } = await freshDatabase(config, 'broken');
    await assert.rejects(migrate(db, 'demo', readMigrations(dir)), (err: unknown) => {
      assert.ok(err instanceof MigrationError);
      assert.match(err.message, /demo migration 2 \(broken\) failed: column "no_such_column" does not exist/);
      return true;
    });
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('first_table', 'second_table', 'schema_migrations')",
    );
    assert.equal(rows[0]!.n, 0);
  });

  test('an applied file that was edited, or a database newer than the code, is refused', async () => {
    const dir = scratchDir();
    writeFileSync(path.join(dir, '001_first.sql'), 'CREATE TABLE first_table (id int);');
    writeFileSync(path.join(dir, '002_second.sql'), 'CREATE TABLE second_table (id int);');
    const { db } = await freshDatabase(config, 'edited');
    await migrate(db, 'demo', readMigrations(dir));
    writeFileSync(path.join(dir, '002_second.sql'), 'CREATE TABLE second_table (id bigint);');
    await assert.rejects(migrate(db, 'demo', readMigrations(dir)), /demo migration 2 \(second\) was changed after it was applied/);
    await assert.rejects(migrate(db, 'demo', readMigrations(dir).slice(0, 1)), /demo schema is at version 2, newer than this lessonplan knows \(1\)/);
  });

  test('migration files must be numbered without gaps', () => {
    const dir = scratchDir();
    writeFileSync(path.join(dir, '001_first.sql'), 'SELECT 1;');
    writeFileSync(path.join(dir, '003_third.sql'), 'SELECT 1;');
    assert.throws(() => readMigrations(dir), /without gaps; found 3 at position 2/);
  });
});
