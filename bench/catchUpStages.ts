/**
 * Where a slave's catch-up time goes, stage by stage (runnable alone: `node --import tsx
 * bench/catchUpStages.ts`): a backlog of single-row blocks on the master, then, batch by
 * batch and one stage at a time, the master's read of a batch from its database, the
 * same batch fetched through the master's API (read, JSON, HTTP, parse), and the slave's
 * apply of it in one transaction; then the whole catch-up as followMaster runs it (the
 * next batch fetched while one is applied). Appends one row per run to BENCHMARKS.md.
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { applyBlocks } from '../src/activities/slave/applyBlocks';
import { catchUp } from '../src/activities/slave/catchUp';
import { createMasterClient } from '../src/activities/slave/masterClient';
import { loadConfig } from '../src/config/load';
import { openDatabase } from '../src/db/database';
import { createLogger } from '../src/logging';
import { answerBlocksAfter, saveOnMaster } from '../src/master/commitblocks';
import { slaveCredential } from '../src/master/credentials';
import { startMasterService } from '../src/master/service';
import { deployModel, migrateReplica } from '../src/model/deploy';
import { databaseUrl } from '../src/stack/endpoints';
import { stackDown, stackUp } from '../src/stack/stack';
import { LIBRARY_V1 } from '../test/helpers/replication';
import { writeTestConfig } from '../test/helpers/testConfig';
import { appendBenchmarkRow } from './rollout';

const BACKLOG = 100_000;
/** A slave's default batchSize (config: slaves[].batchSize). */
const BATCH = 1_000;

const TABLE = {
  intro: [
    '## Catch-up by stage',
    '',
    'Made by `npm run bench` (bench/catchUpStages.ts): 100000 single-row blocks saved on the master',
    "(32 clients), then taken by a slave 1000 at a time, one stage after the other: the master's",
    "read of a batch from its database, the same batch fetched through the master's API (read,",
    "JSON, HTTP, parse), and the slave's apply of it (business rows and block rows in one",
    'transaction); then a second slave catching up on the same backlog as followMaster does it (the',
    'next batch fetched while one is applied). Each stage as ms a batch and blocks/s.',
  ],
  header: '| date | read on the master | fetched through the API | applied on the slave | the whole catch-up, overlapped |',
};
const log = createLogger('bench', { level: 'warn' });
const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-bench-stages-'));
chmodSync(dir, 0o755);
const config = loadConfig(writeTestConfig(dir));
const slave = config.slaves[0]!;
await stackUp(config, log);
try {
  const masterService = await startMasterService(config, log);
  const slaveDb = openDatabase(databaseUrl(config, slave.database), { max: 4 });
  const otherDb = openDatabase(databaseUrl(config, config.slaves[1]!.database), { max: 4 });
  try {
    const { checksum } = await deployModel(masterService.db, LIBRARY_V1);
    for (const db of [slaveDb, otherDb]) {
      await migrateReplica(db);
      await deployModel(db, LIBRARY_V1);
    }
    console.log(`saving ${BACKLOG} single-row blocks on the master`);
    let next = 0;
    const savingStart = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < BACKLOG) {
          const id = ++next;
          await saveOnMaster(masterService.db, {
            modelChecksum: checksum,
            origin: 'bench',
            idempotencyKey: `b-${id}`,
            changes: [{ class: 'book', op: 'upsert', values: { id, title: `book ${id}`, copies: id % 7 } }],
          });
        }
      }),
    );
    console.log(`saved in ${((performance.now() - savingStart) / 1000).toFixed(1)} s`);
    const master = createMasterClient({ url: masterService.url, slave: slave.name, credential: slaveCredential(config, slave) });
    const stages = { read: 0, fetch: 0, apply: 0 };
    for (let after = 0; after < BACKLOG; after += BATCH) {
      let t = performance.now();
      await answerBlocksAfter(masterService.db, after, BATCH);
      stages.read += performance.now() - t;
      t = performance.now();
      const { blocks } = await master.blocksAfter(after, { limit: BATCH });
      stages.fetch += performance.now() - t;
      t = performance.now();
      await applyBlocks(slaveDb, blocks);
      stages.apply += performance.now() - t;
    }
    const batches = BACKLOG / BATCH;
    const cell = (ms: number) => `${(ms / batches).toFixed(1)} ms (${Math.round((BACKLOG * 1000) / ms)} /s)`;
    const t = performance.now();
    await catchUp(otherDb, master, { waitMs: 0, budgetMs: 600_000, batchSize: BATCH });
    const whole = performance.now() - t;
    const row = `| ${new Date().toISOString().slice(0, 10)} | ${cell(stages.read)} | ${cell(stages.fetch)} | ${cell(stages.apply)} | ${cell(whole)} |`;
    console.log(row);
    appendBenchmarkRow(TABLE, row);
  } finally {
    await slaveDb.close();
    await otherDb.close();
    await masterService.close();
  }
} finally {
  await stackDown(config, log);
}
