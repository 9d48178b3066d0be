/**
 * A master/slave cluster for one test file: a fresh master database and one per slave
 * on the suite's PostgreSQL, the master's API on a free port (in this process, so a test
 * can stop and start it), and the slave workers with the orchestration worker.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { WorkflowHandle } from '@temporalio/client';
import { loadConfig } from '../../src/config/load';
import type { ClusterConfig } from '../../src/config/schema';
import type { Database } from '../../src/db/database';
import { createLogger } from '../../src/logging';
import { Runtime } from '@temporalio/worker';
import { startMasterService, type MasterService } from '../../src/master/service';
import { installRuntime } from '../../src/workers/runtime';
import { deployModel } from '../../src/model/deploy';
import { parseModel } from '../../src/model/modelFile';
import { startSlaveSync } from '../../src/operator/slaveSync';
import type { Model } from '../../src/shared/model';
import type { SlaveSyncStatus } from '../../src/shared/slaveSync';
import { freeStablePort } from '../../src/stack/ports';
import { freshDatabase, onTeardown, testConfigFile, testStack } from './stack';
import { clientForTest, runWorkersForTest } from './workers';
import { liveSlaveStatus } from '../../src/operator/liveSlaveStatus';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The model the replication tests start with: books and their loans. */
export const LIBRARY_V1: Model = parseModel({
  classes: [
    {
      name: 'book',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'title', type: 'text' },
        { name: 'copies', type: 'integer' },
      ],
    },
  ],
});

/** v1 plus a new attribute, a widened type and a new class: every change automatic. */
export const LIBRARY_V2: Model = parseModel({
  classes: [
    {
      name: 'book',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'title', type: 'text' },
        { name: 'copies', type: 'bigint' },
        { name: 'isbn', type: 'text' },
      ],
    },
    {
      name: 'loan',
      key: ['book_id', 'reader'],
      attributes: [
        { name: 'book_id', type: 'integer', nullable: false },
        { name: 'reader', type: 'text', nullable: false },
        { name: 'until', type: 'timestamptz' },
      ],
    },
  ],
});

export interface ReplicationCluster {
  config: ClusterConfig;
  configFile: string;
  master: { db: Database; url: string; service(): MasterService; start(): Promise<void>; stop(): Promise<void> };
  slaves: Record<string, { db: Database; url: string }>;
  client: Awaited<ReturnType<typeof clientForTest>>['client'];
  /** Starts (or finds) the slave's slaveSync; terminated when the file ends. */
  sync(slave: string): Promise<WorkflowHandle>;
}

export async function replicationCluster(
  name: string,
  slaveNames: string[],
  options: { workersFor?: string[]; edit?: (raw: Record<string, any>) => void } = {},
): Promise<ReplicationCluster> {
  const base = await testStack();
  const dir = mkdtempSync(path.join(os.tmpdir(), `lessonplan-${name}-`));
  chmodSync(dir, 0o755);
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  const prefix = name.replace(/-/g, '_');
  const masterDb = await freshDatabase(base, `${prefix}_master`);
  const slaves: ReplicationCluster['slaves'] = {};
  const raw = parse(readFileSync(testConfigFile(), 'utf8'));
  raw.dataDir = base.dataDir;
  raw.master = {
    name: 'master',
    database: masterDb.spec,
    api: { host: '127.0.0.1', port: await freeStablePort() },
    pruneInterval: '1h',
    keepBlocksFor: '0s',
  };
  raw.slaves = [];
  for (const slave of slaveNames) {
    const created = await freshDatabase(base, `${prefix}_${slave.replace(/-/g, '_')}`);
    slaves[slave] = { db: created.db, url: created.url };
    raw.slaves.push({ name: slave, database: created.spec });
  }
  options.edit?.(raw);
  const configFile = path.join(dir, 'cluster.yaml');
  writeFileSync(configFile, stringify(raw));
  const config = loadConfig(configFile);

  let service: MasterService | undefined;
  const log = createLogger('test-master', { pretty: false });
  // The runtime of this process (its Prometheus endpoint when the config has one) counts the master's saves.
  installRuntime(log, config.metrics?.bindAddress);
  const master = {
    db: masterDb.db,
    url: masterDb.url,
    service: () => service!,
    start: async () => {
      service = await startMasterService(config, log, Runtime.instance().metricMeter);
    },
    stop: async () => {
      await service?.close();
      service = undefined;
    },
  };
  await master.start();
  onTeardown(() => master.stop());

  await runWorkersForTest(config, [
    { role: 'orchestration' },
    ...(options.workersFor ?? slaveNames).map((slave) => ({ role: 'slave' as const, name: slave })),
  ]);
  const { client } = await clientForTest(config);
  const sync = async (slave: string) => {
    const handle = await startSlaveSync(client, config, slave);
    onTeardown(() => handle.terminate('the test file is done').catch(() => undefined));
    return handle;
  };
  return { config, configFile, master, slaves, client, sync };
}

/** Deploys a model to the master's database (what `lessonplan model deploy` does). */
export function deployToMaster(cluster: ReplicationCluster, model: Model, options: { allowDestructive?: boolean } = {}) {
  return deployModel(cluster.master.db, model, options);
}

/** Polls the slave's status until `ok` holds (at most `ms`). */
export async function waitForStatus(
  handle: WorkflowHandle,
  ok: (s: SlaveSyncStatus) => boolean,
  ms = 60_000,
  what = 'the slave',
): Promise<SlaveSyncStatus> {
  const deadline = Date.now() + ms;
  let last: SlaveSyncStatus | undefined;
  for (;;) {
    last = await liveSlaveStatus(handle);
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what} did not get there in ${ms} ms; last status: ${JSON.stringify(last)}`);
    await sleep(100);
  }
}

/**
 * A checksum per table of the database's content: business tables of the model, the
 * commitblocks and the current model, each as md5 over its rows in key order.
 */
export async function contentChecksums(db: Database, model: Model): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const c of model.classes) {
    const order = c.key.map((k) => `"${k}"`).join(', ');
    const { rows } = await db.query<{ sum: string; n: string }>(
      `SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY ${order}), '')) AS sum, count(*) AS n FROM "${c.name}" t`,
    );
    sums[c.name] = `${rows[0]!.n} rows ${rows[0]!.sum}`;
  }
  const blocks = await db.query<{ sum: string; n: string }>(
    `SELECT md5(coalesce(string_agg(concat_ws(',', seq, model_checksum, changes::text, origin, idempotency_key, committed_at), '|' ORDER BY seq), '')) AS sum,
            count(*) AS n FROM lp_commitblocks`,
  );
  sums.lp_commitblocks = `${blocks.rows[0]!.n} rows ${blocks.rows[0]!.sum}`;
  const model_ = await db.query<{ checksum: string }>('SELECT checksum FROM lp_models WHERE current');
  sums.lp_models = model_.rows[0]?.checksum ?? 'none';
  return sums;
}

/** A save as the application on a slave's host makes it: a POST to the slave worker's save endpoint. */
export async function postSave(port: number, body: unknown, authorization: string | null): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/saves`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}
