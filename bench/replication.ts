/**
 * The second part of `npm run bench` (runnable alone: `node --import tsx bench/replication.ts`):
 * master/slave commitblock replication on the real stack, against PostgreSQL's own logical
 * replication on this machine, both in one run. Appends one row per system to the
 * replication table of BENCHMARKS.md:
 *
 * - commit answered: a save through slave A (the `save` update of `slave-sync/<A>`,
 *   answered once applied on A), or one autocommitted INSERT on the publisher;
 * - commit to visible: from the start of that call until a SELECT polled about every
 *   millisecond on slave B (or the subscriber) sees the row; p50 / p99;
 * - catch-up: a backlog of single-row commits made while the other side does not follow
 *   (B's slaveSync not started yet; the subscription disabled), then the time from
 *   starting B's slaveSync (or enabling the subscription) until B holds the last one.
 *
 * The commitblock side is the Temporal dev server and the embedded PostgreSQL with the
 * master's and the slaves' databases, the master's HTTP API and the slave workers in
 * this process. Logical replication runs between two databases of a second embedded
 * PostgreSQL server (the same binaries) started with `wal_level = logical`.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { WorkflowHandle } from '@temporalio/client';
import pg from 'pg';
import { loadConfig } from '../src/config/load';
import type { ClusterConfig } from '../src/config/schema';
import { openDatabase, type Database } from '../src/db/database';
import { createLogger } from '../src/logging';
import { saveOnMaster } from '../src/master/commitblocks';
import { saveEndpointToken } from '../src/master/credentials';
import { deployModel } from '../src/model/deploy';
import { planEvolution } from '../src/model/evolution';
import { parseModel } from '../src/model/modelFile';
import { connectClient } from '../src/operator/client';
import { percentile } from '../src/operator/replicationDemo';
import { saveThroughSlave, startSlaveSync } from '../src/operator/slaveSync';
import type { ObjectChange } from '../src/shared/commitblock';
import { databaseUrl } from '../src/stack/endpoints';
import { embeddedPostgresUrl, ensureDatabase, startPostgresServer, stopPostgresServer } from '../src/stack/postgresServer';
import { freeStablePort } from '../src/stack/ports';
import { stackDown, stackUp } from '../src/stack/stack';
import { startWorkers } from '../src/workers/runWorkers';
import { writeTestConfig } from '../test/helpers/testConfig';
import { saveBook } from './clusterInProcesses';
import { appendBenchmarkRow } from './rollout';

/** Sequential commits measured for latency, after the warm-up ones. */
const SAVES = 200;
const WARMUP = 20;
/** Single-row commits in the backlog a follower catches up on, and how many are made at a time. */
const BACKLOG = 100_000;
const CONCURRENCY = 8;
/** Ids of the latency rows; the backlog takes 1..BACKLOG. */
const LAG_IDS = 1_000_000;
/** Clients saving at once through one slave, and saves each. */
const CONCURRENT_CLIENTS = 32;
const CONCURRENT_SAVES = 25;
const CONCURRENT_WARMUP = 5;

const log = createLogger('bench', { level: 'warn' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

/** The business table of both systems: one class, one row per commit. */
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
const book = (id: number) => ({ id, title: `book ${id}`, copies: id % 7 });
const bookChange = (id: number): ObjectChange => ({ class: 'book', op: 'upsert', values: book(id) });

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(1) : ms.toFixed(0));
const p50p99 = (values: number[]) => `${fmt(percentile(values, 50))} / ${fmt(percentile(values, 99))} ms`;
const perSecond = (n: number, ms: number) => Math.round((n * 1000) / ms);

/** Reads about every millisecond until `done` holds; returns when it first did. */
async function pollUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs: number): Promise<number> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return now();
    if (now() > deadline) throw new Error(`${what}: not there after ${timeoutMs} ms (last read: ${JSON.stringify(value)})`);
    await sleep(1);
  }
}

/** Runs task(0) .. task(n - 1), `concurrency` at a time. */
async function inPool(n: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

interface Lag {
  /** From the call's start until it answered. */
  commit: number[];
  /** From the call's start until the other side showed the row. */
  visible: number[];
}

/** Sequential commits; each is watched for on the other side from the moment it starts. */
async function measureLag(commit: (id: number) => Promise<unknown>, visible: (id: number) => Promise<boolean>): Promise<Lag> {
  const lag: Lag = { commit: [], visible: [] };
  for (let i = 0; i < WARMUP + SAVES; i++) {
    const id = LAG_IDS + i;
    const start = now();
    let answered = 0;
    let failure: unknown;
    const committing = commit(id).then(
      () => void (answered = now()),
      (err: unknown) => void (failure = err),
    );
    const seen = await pollUntil(
      async () => {
        if (failure) throw failure;
        return visible(id);
      },
      Boolean,
      `row ${id} on the other side`,
      30_000,
    );
    await committing;
    if (failure) throw failure;
    if (i >= WARMUP) {
      lag.commit.push(answered - start);
      lag.visible.push(seen - start);
    }
  }
  return lag;
}

interface CatchUp {
  ms: number;
  /** Until the first of the backlog showed on the other side. */
  firstMs: number;
  /** How many of the backlog were left at that moment (the steady rate is over these). */
  leftAtFirst: number;
  /** How long the backlog's commits took, CONCURRENCY at a time. */
  committedMs: number;
}

/** Starts the follower and polls its position until it reaches `target`. */
async function measureCatchUp(
  start: () => Promise<unknown>,
  position: () => Promise<number>,
  target: number,
  what: string,
): Promise<Omit<CatchUp, 'committedMs'>> {
  const before = await position();
  const t0 = now();
  let first: { at: number; position: number } | undefined;
  await start();
  const end = await pollUntil(
    position,
    (p) => {
      if (p > before) first ??= { at: now(), position: p };
      return p >= target;
    },
    what,
    180_000,
  );
  return { ms: end - t0, firstMs: first!.at - t0, leftAtFirst: target - first!.position };
}

interface Figures {
  lag: Lag;
  catchUp: CatchUp;
}

/** Many clients saving at once: each save's time to its answer, and the whole run's. */
interface Concurrent {
  clients: number;
  answered: number[];
  ms: number;
}

/**
 * CONCURRENT_CLIENTS clients, each making CONCURRENT_SAVES saves one after another, after a
 * warm-up round of CONCURRENT_WARMUP saves each (not counted), as the sequential phases have
 * theirs: the first round's p99 was that of code not yet optimised by V8.
 */
async function measureConcurrent(save: (client: number, i: number) => Promise<unknown>): Promise<Concurrent> {
  await Promise.all(
    Array.from({ length: CONCURRENT_CLIENTS }, async (_, c) => {
      for (let i = 0; i < CONCURRENT_WARMUP; i++) await save(c, CONCURRENT_SAVES + i);
    }),
  );
  const answered: number[] = [];
  const t0 = now();
  await Promise.all(
    Array.from({ length: CONCURRENT_CLIENTS }, async (_, c) => {
      for (let i = 0; i < CONCURRENT_SAVES; i++) {
        const start = now();
        await save(c, i);
        answered.push(now() - start);
      }
    }),
  );
  return { clients: CONCURRENT_CLIENTS, answered, ms: now() - t0 };
}

interface BlockFigures extends Figures {
  slaves: [string, string];
  /** The same sequential commits made on the master itself, watched for on B. */
  onMaster: Lag;
  /** Through A's `save` update (Temporal), watched for on B. */
  throughUpdate: Lag;
  concurrent: Concurrent;
}

async function benchCommitblocks(dir: string): Promise<BlockFigures> {
  const apiPort = await freeStablePort();
  const endpointPort = await freeStablePort();
  const config: ClusterConfig = loadConfig(
    writeTestConfig(dir, (raw) => {
      raw.master.api.port = apiPort;
      raw.slaves[0].saveEndpoint = { port: endpointPort };
      raw.timings = { ...raw.timings, slavePollInterval: '1s', saveTimeout: '10s' };
    }),
  );
  const [a, b] = config.slaves;
  if (!a || !b) throw new Error('the bench needs two slaves in config/local-demo.yaml');
  const maxSeq = async (db: Pick<Database, 'query'>) =>
    Number((await db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM lp_commitblocks')).rows[0]!.seq ?? 0);

  await stackUp(config, log);
  try {
    const workers = await startWorkers(
      config,
      [{ role: 'orchestration' }, { role: 'master' }, { role: 'slave', name: a.name }, { role: 'slave', name: b.name }],
      log,
    );
    const handles: WorkflowHandle[] = [];
    const opened: { close(): Promise<void> }[] = [];
    try {
      const operator = await connectClient(config);
      opened.push(operator);
      const master = openDatabase(databaseUrl(config, config.master!.database), { max: CONCURRENCY, applicationName: 'lessonplan-bench' });
      opened.push(master);
      const slaveDb = async (url: string) => {
        const client = new pg.Client({ connectionString: url, application_name: 'lessonplan-bench' });
        await client.connect();
        opened.push({ close: () => client.end() });
        return client;
      };
      const dbA = await slaveDb(databaseUrl(config, a.database));
      const dbB = await slaveDb(databaseUrl(config, b.database));

      const { checksum } = await deployModel(master, MODEL);

      // Catch-up: the backlog saved on the master while no slave follows, then B's slaveSync starts.
      console.log(`commitblocks: saving ${BACKLOG} single-row blocks on the master, ${CONCURRENCY} at a time`);
      const savingStart = now();
      await inPool(BACKLOG, CONCURRENCY, (i) =>
        saveOnMaster(master, { modelChecksum: checksum, changes: [bookChange(i + 1)], origin: 'master', idempotencyKey: `backlog-${i + 1}` }),
      );
      const committedMs = now() - savingStart;
      const target = await maxSeq(master);
      console.log(`commitblocks: ${b.name} catching up on ${target} blocks`);
      const caught = await measureCatchUp(
        async () => handles.push(await startSlaveSync(operator.client, config, b.name)),
        () => maxSeq(dbB),
        target,
        `${b.name} catching up to block ${target}`,
      );
      const catchUp = { ...caught, committedMs };

      // A follows too (not timed), then: saves through A, watched for on B.
      handles.push(await startSlaveSync(operator.client, config, a.name));
      await pollUntil(
        () => maxSeq(dbA),
        (seq) => seq >= target,
        `${a.name} catching up to block ${target}`,
        180_000,
      );
      const onB = async (id: number) => ((await dbB.query('SELECT 1 FROM book WHERE id = $1', [id])).rowCount ?? 0) > 0;
      const endpoint = { slave: a.name, url: `http://127.0.0.1:${endpointPort}/v1/saves`, token: saveEndpointToken(config, a) };
      console.log(`commitblocks: ${WARMUP} + ${SAVES} commits on the master, watched for on ${b.name}`);
      const onMaster = await measureLag(
        (id) => saveOnMaster(master, { modelChecksum: checksum, changes: [bookChange(id)], origin: 'master', idempotencyKey: `master-${id}` }),
        onB,
      );
      console.log(`commitblocks: ${WARMUP} + ${SAVES} saves through ${a.name}'s save endpoint, watched for on ${b.name}`);
      const lag = await measureLag(
        (id) => saveBook(endpoint, checksum, id + 10_000, `lag-${id}`),
        (id) => onB(id + 10_000),
      );
      console.log(`commitblocks: ${WARMUP} + ${SAVES} saves through ${a.name}'s save update (Temporal), watched for on ${b.name}`);
      const throughUpdate = await measureLag(
        (id) =>
          saveThroughSlave(operator.client, a.name, { changes: [bookChange(id + 20_000)], idempotencyKey: `update-${id}`, modelChecksum: checksum }),
        (id) => onB(id + 20_000),
      );
      console.log(`commitblocks: ${CONCURRENT_CLIENTS} clients saving ${CONCURRENT_SAVES} times each through ${a.name}'s save endpoint`);
      const concurrent = await measureConcurrent((c, i) => saveBook(endpoint, checksum, LAG_IDS + 100_000 + c * 1_000 + i, `concurrent-${c}-${i}`));
      return { lag, onMaster, throughUpdate, concurrent, catchUp, slaves: [a.name, b.name] };
    } finally {
      for (const handle of handles) await handle.terminate('the bench is done').catch(() => undefined);
      for (const o of opened.reverse()) await o.close().catch(() => undefined);
      workers.shutdown();
      await workers.done;
    }
  } finally {
    await stackDown(config, log);
  }
}

async function benchLogicalReplication(dir: string): Promise<Figures> {
  const server = await startPostgresServer({
    dataDir: path.join(dir, 'logical'),
    port: 0,
    settings: ['wal_level = logical', 'max_replication_slots = 4', 'max_wal_senders = 4'],
  });
  try {
    await ensureDatabase(embeddedPostgresUrl(server), 'bench_publisher');
    await ensureDatabase(embeddedPostgresUrl(server), 'bench_subscriber');
    const publisherUrl = embeddedPostgresUrl(server, 'bench_publisher');
    const pub = new pg.Client({ connectionString: publisherUrl, application_name: 'lessonplan-bench' });
    const sub = new pg.Client({ connectionString: embeddedPostgresUrl(server, 'bench_subscriber'), application_name: 'lessonplan-bench' });
    const pool = new pg.Pool({ connectionString: publisherUrl, max: CONCURRENCY, application_name: 'lessonplan-bench' });
    let subscribed = false;
    try {
      await pub.connect();
      await sub.connect();
      // The table exactly as the model makes it on the master and the slaves.
      for (const sql of planEvolution(null, MODEL).flatMap((c) => c.sql)) {
        await pub.query(sql);
        await sub.query(sql);
      }
      await pub.query('CREATE PUBLICATION bench_pub FOR TABLE book');
      // The slot made beforehand: CREATE SUBSCRIPTION making it on its own server would hang.
      await pub.query(`SELECT pg_create_logical_replication_slot('bench_sub', 'pgoutput')`);
      await sub.query(
        `CREATE SUBSCRIPTION bench_sub CONNECTION ${sub.escapeLiteral(publisherUrl)} PUBLICATION bench_pub
         WITH (create_slot = false, slot_name = 'bench_sub', copy_data = false)`,
      );
      subscribed = true;
      const applyWorker = async () =>
        (await sub.query<{ pid: number | null }>(`SELECT pid FROM pg_stat_subscription WHERE subname = 'bench_sub'`)).rows[0]?.pid ?? null;
      await pollUntil(applyWorker, (pid) => pid !== null, 'the subscription apply worker', 30_000);

      console.log(`logical replication: ${WARMUP} + ${SAVES} inserts, watched for on the subscriber`);
      const insert = (id: number, db: pg.Client | pg.Pool) => {
        const row = book(id);
        return db.query('INSERT INTO book (id, title, copies) VALUES ($1, $2, $3)', [row.id, row.title, row.copies]);
      };
      const lag = await measureLag(
        (id) => insert(id, pub),
        async (id) => ((await sub.query('SELECT 1 FROM book WHERE id = $1', [id])).rowCount ?? 0) > 0,
      );

      await sub.query('ALTER SUBSCRIPTION bench_sub DISABLE');
      const stopped = await pollUntil(applyWorker, (pid) => pid === null, 'the apply worker stopping', 30_000);
      console.log(`logical replication: ${BACKLOG} single-row commits with the subscription disabled, ${CONCURRENCY} at a time`);
      const committingStart = now();
      await inPool(BACKLOG, CONCURRENCY, (i) => insert(i + 1, pool));
      const committedMs = now() - committingStart;
      const count = async () => Number((await sub.query<{ n: string }>('SELECT count(*) AS n FROM book')).rows[0]!.n);
      const target = (await count()) + BACKLOG;
      // The launcher starts apply workers at most once per wal_retrieve_retry_interval: enabling
      // sooner after the disable would time that pause, not the catch-up.
      const retryMs = Number(
        (await sub.query<{ ms: string }>(`SELECT setting AS ms FROM pg_settings WHERE name = 'wal_retrieve_retry_interval'`)).rows[0]!.ms,
      );
      await sleep(Math.max(0, stopped + retryMs + 200 - now()));
      console.log('logical replication: subscription enabled, catching up');
      const caught = await measureCatchUp(() => sub.query('ALTER SUBSCRIPTION bench_sub ENABLE'), count, target, 'the subscriber catching up');
      return { lag, catchUp: { ...caught, committedMs } };
    } finally {
      if (subscribed) {
        // Dropped without reaching over to the publisher: detach the slot, then drop it there.
        await sub.query('ALTER SUBSCRIPTION bench_sub DISABLE').catch(() => undefined);
        await sub.query('ALTER SUBSCRIPTION bench_sub SET (slot_name = NONE)').catch(() => undefined);
        await sub.query('DROP SUBSCRIPTION bench_sub').catch((err) => console.error(`could not drop the subscription: ${(err as Error).message}`));
        const slotActive = async () =>
          (await pub.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = 'bench_sub'`)).rows[0]?.active ?? false;
        await pollUntil(slotActive, (active) => !active, 'the slot released', 10_000).catch(() => undefined);
        await pub
          .query(`SELECT pg_drop_replication_slot('bench_sub')`)
          .catch((err) => console.error(`could not drop the slot: ${(err as Error).message}`));
      }
      await pool.end().catch(() => undefined);
      await pub.end().catch(() => undefined);
      await sub.end().catch(() => undefined);
    }
  } finally {
    await stopPostgresServer(server);
  }
}

const REPLICATION_TABLE = {
  intro: [
    '## Replication',
    '',
    'Made by `npm run bench` (its second part, `bench/replication.ts`, also runnable alone) on the same',
    'machine, both systems in one run. Commitblocks: the Temporal dev server and the embedded',
    'PostgreSQL (master and slave databases), the master API and the slave workers all in the bench',
    'process, slavePollInterval 1 s. A run appends five rows:',
    '',
    '- *commit on the master*: a save made on the master itself (answered at its commit), seen on slave-2;',
    "- *save endpoint*: a save through slave-1's save endpoint (HTTP to the slave's worker, forwarded to",
    '  the master, answered once the block is applied on slave-1: read-your-writes), seen on slave-2;',
    '- *save update*: the same through the `save` update of `slave-sync/slave-1` (Temporal on the way);',
    `- *${CONCURRENT_CLIENTS} clients*: ${CONCURRENT_CLIENTS} clients saving at once through slave-1's endpoint, each answer timed;`,
    "- PostgreSQL's logical replication: one autocommitted INSERT on the publisher, seen on the subscriber.",
    '',
    '*Commit to visible*: from the start of the call until a SELECT polled about every millisecond on',
    `slave-2, or on the subscriber, sees the row. Over ${SAVES} sequential commits after ${WARMUP} warm-up ones,`,
    `p50 / p99. *Catch-up*: ${BACKLOG} single-row commits (${CONCURRENCY} at a time) made while the other side does not`,
    "follow (slave-2's slaveSync not started yet; the subscription disabled), then the time from",
    "starting slave-2's slaveSync (or `ALTER SUBSCRIPTION ... ENABLE`, sent once",
    'wal_retrieve_retry_interval has passed since the disable, as the launcher waits that long between',
    'starts) until it holds the last one, with the time to the first one and the rate after it. Blocks',
    'carry one change each, so blocks/s are rows/s. Logical replication (pgoutput) runs between two',
    'databases of a second embedded PostgreSQL server, the same binaries and settings but',
    '`wal_level = logical`.',
  ],
  header:
    '| date | run | commit answered (p50 / p99) | commit to visible on the other side (p50 / p99) | catch-up on a backlog of single-row commits | made by |',
};

/** "20000 rows in 1.23 s = 16260 rows/s (first after 45 ms, then 16900 rows/s); committed in 3.45 s" */
function catchUpCell(unit: string, c: CatchUp, committedBy: string): string {
  const steady = perSecond(c.leftAtFirst, c.ms - c.firstMs);
  return `${BACKLOG} ${unit} in ${(c.ms / 1000).toFixed(2)} s = ${perSecond(BACKLOG, c.ms)} ${unit}/s (first after ${fmt(c.firstMs)} ms, then ${steady} ${unit}/s); ${committedBy} committed them in ${(c.committedMs / 1000).toFixed(2)} s`;
}

const madeBy = process.env.npm_lifecycle_event === 'bench' ? '`npm run bench`' : '`node --import tsx bench/replication.ts`';
const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-bench-replication-'));
chmodSync(dir, 0o755);
try {
  const date = new Date().toISOString().slice(0, 10);
  const logical = await benchLogicalReplication(dir);
  const blocks = await benchCommitblocks(dir);
  const [a, b] = blocks.slaves;
  const pgVersion = readFileSync(path.join(dir, 'logical', 'postgres', 'data', 'PG_VERSION'), 'utf8').trim();
  const rows = [
    `| ${date} | commitblocks: commit on the master, read on ${b}; catch-up of ${b} | ${p50p99(blocks.onMaster.commit)} | ${p50p99(blocks.onMaster.visible)} | ${catchUpCell('blocks', blocks.catchUp, 'the master')} | ${madeBy} |`,
    `| ${date} | commitblocks: save through ${a}'s save endpoint (answered once applied on ${a}), read on ${b} | ${p50p99(blocks.lag.commit)} | ${p50p99(blocks.lag.visible)} | – | ${madeBy} |`,
    `| ${date} | commitblocks: save through ${a}'s \`save\` update (Temporal), read on ${b} | ${p50p99(blocks.throughUpdate.commit)} | ${p50p99(blocks.throughUpdate.visible)} | – | ${madeBy} |`,
    `| ${date} | commitblocks: ${blocks.concurrent.clients} clients saving at once through ${a}'s save endpoint | ${p50p99(blocks.concurrent.answered)} | – | ${blocks.concurrent.answered.length} saves in ${(blocks.concurrent.ms / 1000).toFixed(2)} s = ${perSecond(blocks.concurrent.answered.length, blocks.concurrent.ms)} saves/s | ${madeBy} |`,
    `| ${date} | PostgreSQL ${pgVersion} logical replication, publisher → subscriber database | ${p50p99(logical.lag.commit)} | ${p50p99(logical.lag.visible)} | ${catchUpCell('rows', logical.catchUp, 'the publisher')} | ${madeBy} |`,
  ];
  for (const row of rows) {
    console.log(row);
    appendBenchmarkRow(REPLICATION_TABLE, row);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
