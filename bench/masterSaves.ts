/**
 * `npm run bench`, the master's saves per second (runnable alone: `node --import tsx
 * bench/masterSaves.ts`): 32 clients saving single-row blocks on the master at once
 * (saveOnMaster, as the master's API does for every save through a slave: the business
 * row and its numbered block in one transaction, gap-free commit-order numbering), beside
 * 32 clients making plain autocommitted INSERTs of the same rows into a table of the same
 * shape, on the same PostgreSQL in the same run. Appends one row per run to BENCHMARKS.md.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/load';
import { openDatabase } from '../src/db/database';
import { createLogger } from '../src/logging';
import { saveOnMaster } from '../src/master/commitblocks';
import { deployModel, migrateReplica } from '../src/model/deploy';
import { parseModel } from '../src/model/modelFile';
import { databaseUrl } from '../src/stack/endpoints';
import { stackDown, stackUp } from '../src/stack/stack';
import { writeTestConfig } from '../test/helpers/testConfig';
import { appendBenchmarkRow } from './rollout';

const CLIENTS = 32;
const SAVES = 20_000;
const log = createLogger('bench', { level: 'warn' });

const MODEL = parseModel({
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

/** task(0) .. task(n - 1), `clients` at a time; the rate per second. */
async function rate(n: number, clients: number, task: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < n) await task(next++);
    }),
  );
  return Math.round((n * 1000) / (performance.now() - start));
}

const TABLE = {
  intro: [
    '## Master saves per second',
    '',
    'Made by `npm run bench` (bench/masterSaves.ts): 32 clients at once, 20000 single-row saves',
    "on the master (the business row and its numbered block in one transaction, the master's",
    'numbering gap-free in commit order) beside 20000 plain autocommitted INSERTs of the same rows',
    'by 32 clients, on the same embedded PostgreSQL in the same run.',
  ],
  header: '| date | master saves (32 clients) | plain INSERTs (32 clients) | saves against INSERTs |',
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-bench-saves-'));
chmodSync(dir, 0o755);
const config = loadConfig(writeTestConfig(dir));
await stackUp(config, log);
try {
  const master = openDatabase(databaseUrl(config, config.master!.database), { max: CLIENTS, applicationName: 'lessonplan-bench' });
  try {
    await migrateReplica(master);
    const { checksum } = await deployModel(master, MODEL);
    await master.query('CREATE TABLE bench_plain_book (id integer PRIMARY KEY, title text, copies integer)');
    const row = (i: number) => ({ id: i, title: `book ${i}`, copies: i % 7 });
    const saves = await rate(SAVES, CLIENTS, (i) =>
      saveOnMaster(master, {
        modelChecksum: checksum,
        origin: 'bench',
        idempotencyKey: `save-${i}`,
        changes: [{ class: 'book', op: 'upsert', values: row(i) }],
      }),
    );
    const inserts = await rate(SAVES, CLIENTS, (i) =>
      master.query('INSERT INTO bench_plain_book (id, title, copies) VALUES ($1, $2, $3)', [i, `book ${i}`, i % 7]),
    );
    const line = `| ${new Date().toISOString().slice(0, 10)} | ${saves} /s | ${inserts} /s | ${(saves / inserts).toFixed(2)} |`;
    console.log(line);
    appendBenchmarkRow(TABLE, line);
  } finally {
    await master.close();
  }
} finally {
  await stackDown(config, log);
  rmSync(dir, { recursive: true, force: true });
}
