/**
 * The suite's stack: `npm test` starts one and names its config in
 * $LESSONPLAN_TEST_CONFIG. A test file run on its own (node --import tsx --test FILE)
 * starts its own stack in a temporary folder and stops it when the file is done.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/load';
import type { ClusterConfig, DatabaseConfig } from '../../src/config/schema';
import { openDatabase, type Database } from '../../src/db/database';
import { databaseUrl } from '../../src/stack/endpoints';
import { ensureDatabase } from '../../src/stack/postgresServer';
import { stackDown, stackUp } from '../../src/stack/stack';
import { writeTestConfig } from './testConfig';
import { freeStablePort } from '../../src/stack/ports';

let suiteConfig: Promise<ClusterConfig> | undefined;
let suiteConfigFile: string | undefined;

/** The suite's config file (after testStack() resolved). */
export function testConfigFile(): string {
  if (!suiteConfigFile) throw new Error('call testStack() first');
  return suiteConfigFile;
}
const teardowns: (() => Promise<unknown> | unknown)[] = [];
let teardownRegistered = false;

/**
 * Runs `fn` when the test file is done, newest first (workers stop before the
 * databases they use are dropped, and those before the file's own stack stops).
 */
export function onTeardown(fn: () => Promise<unknown> | unknown): void {
  teardowns.push(fn);
  if (teardownRegistered) return;
  teardownRegistered = true;
  after(async () => {
    while (teardowns.length > 0) await teardowns.pop()!();
  });
}

export function testStack(): Promise<ClusterConfig> {
  suiteConfig ??= (async () => {
    const file = process.env.LESSONPLAN_TEST_CONFIG;
    if (file) {
      suiteConfigFile = file;
      return loadConfig(file);
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-test-'));
    chmodSync(dir, 0o755);
    const masterPort = await freeStablePort();
    suiteConfigFile = writeTestConfig(dir, (raw) => (raw.master.api.port = masterPort));
    const config = loadConfig(suiteConfigFile);
    onTeardown(async () => {
      await stackDown(config);
      rmSync(dir, { recursive: true, force: true });
    });
    await stackUp(config);
    return config;
  })();
  return suiteConfig;
}

/** A new, empty database on the suite's PostgreSQL, dropped when the test file ends. */
export async function freshDatabase(config: ClusterConfig, prefix: string): Promise<{ spec: DatabaseConfig; db: Database; url: string }> {
  const spec: DatabaseConfig = { name: `t_${prefix}_${randomBytes(4).toString('hex')}` };
  const serverUrl = databaseUrl(config, { name: 'postgres' });
  await ensureDatabase(serverUrl, spec.name);
  const url = databaseUrl(config, spec);
  const db = openDatabase(url, { applicationName: `test-${prefix}` });
  onTeardown(async () => {
    await db.close();
    const admin = openDatabase(serverUrl);
    await admin.query(`DROP DATABASE IF EXISTS "${spec.name}" WITH (FORCE)`);
    await admin.close();
  });
  return { spec, db, url };
}
