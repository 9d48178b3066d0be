/**
 * The master/slave part of the main job: deploy the demo model to the master when it has
 * none, start slaveSync for every slave, save a few loans through the first slave
 * (answered once applied there), and measure when each save shows on the other slaves.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { ClusterConfig } from '../config/schema';
import { openDatabase, type Database } from '../db/database';
import { currentModel, deployModel } from '../model/deploy';
import { readModelFile } from '../model/modelFile';
import type { SlaveSyncStatus } from '../shared/slaveSync';
import { databaseUrl } from '../stack/endpoints';
import type { OperatorClient } from './client';
import { saveThroughSlave, startSlaveSync } from './slaveSync';
import { liveSlaveStatus } from './liveSlaveStatus';

export const DEMO_MODEL_FILE = path.resolve(import.meta.dirname, '../../config/library.model.yaml');

export interface ReplicationDemoResult {
  modelChecksum: string;
  saves: number;
  /** Save through the first slave, answered once applied there: milliseconds, in order. */
  saveMs: number[];
  /** From the save's start until the row shows on every other slave: milliseconds. */
  visibleMs: number[];
  slaves: SlaveSyncStatus[];
  problems: string[];
}

export async function runReplicationDemo(
  config: ClusterConfig,
  operator: OperatorClient,
  out: (line: string) => void,
  saves = 20,
): Promise<ReplicationDemoResult> {
  if (!config.master || config.slaves.length === 0) throw new Error('the config has no master and slaves');
  const open: Database[] = [];
  const connect = (db: ClusterConfig['operationalDatabase']) => {
    const handle = openDatabase(databaseUrl(config, db), { applicationName: 'lessonplan-main-job' });
    open.push(handle);
    return handle;
  };
  try {
    const master = connect(config.master.database);
    const model = (await currentModel(master)) ?? (await deployModel(master, readModelFile(DEMO_MODEL_FILE)));
    out(`master ${config.master.name}: model ${model.checksum.slice(0, 12)}`);
    const handles = await Promise.all(config.slaves.map((s) => startSlaveSync(operator.client, config, s.name)));
    out(`slaveSync running for ${config.slaves.map((s) => s.name).join(', ')}`);

    const [first, ...others] = config.slaves;
    const otherDbs = others.map((s) => connect(s.database));
    const run = randomUUID().slice(0, 8);
    const saveMs: number[] = [];
    const visibleMs: number[] = [];
    const problems: string[] = [];
    for (let i = 0; i < saves; i++) {
      const book = `demo ${run} #${i + 1}`;
      const started = performance.now();
      await saveThroughSlave(
        operator.client,
        first!.name,
        {
          idempotencyKey: `main-job-${run}-${i}`,
          changes: [
            {
              class: 'loan',
              op: 'upsert',
              values: { member_id: 1 + (i % 5), book, due: new Date(Date.now() + 14 * 86_400_000).toISOString(), renewals: 0 },
            },
          ],
        },
        config.timings.saveTimeout,
      );
      saveMs.push(performance.now() - started);
      const visible = await Promise.all(otherDbs.map((db) => waitForRow(db, book, 10_000)));
      if (visible.some((v) => !v)) problems.push(`save ${i + 1} through ${first!.name} did not show on every other slave within 10 s`);
      visibleMs.push(performance.now() - started);
    }
    // Report the slaves once their status shows the master's newest block (a pass reports when it returns).
    const { rows } = await master.query<{ n: string }>('SELECT coalesce(max(seq), 0) AS n FROM lp_commitblocks');
    const newest = Number(rows[0]!.n);
    let slaves: SlaveSyncStatus[] = [];
    for (const deadline = performance.now() + 10_000; performance.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      slaves = await Promise.all(handles.map((h) => liveSlaveStatus(h)));
      if (slaves.every((s) => (s.highWaterMark ?? 0) >= newest)) break;
    }
    for (const s of slaves) if ((s.highWaterMark ?? 0) < newest) problems.push(`${s.slave} is at block ${s.highWaterMark}, the master at ${newest}`);
    return { modelChecksum: model.checksum, saves, saveMs, visibleMs, slaves, problems };
  } finally {
    await Promise.all(open.map((db) => db.close()));
  }
}

async function waitForRow(db: Database, book: string, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const { rowCount } = await db.query('SELECT 1 FROM loan WHERE book = $1', [book]).catch(() => ({ rowCount: 0 }));
    if (rowCount) return true;
    await new Promise((r) => setTimeout(r, 2));
  }
  return false;
}

/** The p-th percentile (0..100) of the values, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
