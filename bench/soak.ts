/**
 * The last part of `npm run bench` (runnable alone: `node --import tsx bench/soak.ts
 * [minutes]`, 30 by default): saves at a steady 200 a second, half through each of two
 * slaves' save endpoints, for half an hour, with every role in its own process as in
 * production (the master worker with its API, one worker per slave, the orchestration
 * worker). What it watches: the memory (RSS) of each process at the start and at the end,
 * every save answered and none past saveTimeout, every block on every slave exactly once
 * and each slave's rows the master's, and slaveSync's histories bounded. Appends one row
 * per run to BENCHMARKS.md.
 */
import { performance } from 'node:perf_hooks';
import type { Database } from '../src/db/database';
import { compareReplicas } from '../src/model/replicaDigest';
import { percentile } from '../src/operator/replicationDemo';
import { workflowIds } from '../src/shared/names';
import { LIBRARY_V1 } from '../test/helpers/replication';
import { saveBook, startClusterInProcesses } from './clusterInProcesses';
import { appendBenchmarkRow } from './rollout';

const MINUTES = Number(process.argv[2] ?? 30);
const SAVES_PER_SECOND = 200;
/** Memory is taken as "at the start" once this much of the soak has run (the processes warmed up). */
const WARM_UP_MS = Math.min(60_000, (MINUTES * 60_000) / 10);
const SAMPLE_EVERY_MS = 30_000;
if (!Number.isFinite(MINUTES) || MINUTES <= 0) throw new Error(`bench/soak.ts takes the soak's length in minutes, not "${process.argv[2]}"`);

const TABLE = {
  intro: [
    '## A soak: 200 saves a second through two slaves',
    '',
    'Made by `npm run bench` (bench/soak.ts): 200 single-row saves a second, alternately through',
    "slave-1's and slave-2's save endpoints (each answered once applied on that slave), for the",
    "minutes given, with the master worker (and its API), each slave's worker and the",
    'orchestration worker each in its own process, on the embedded PostgreSQL and the Temporal',
    'dev server. Memory is the RSS of each process after the warm-up (a tenth of the soak, at most',
    'a minute) and at the end. "Once" checks, after the load, that each slave holds every block',
    "the master made exactly once, in order, and the master's rows (`slave verify`'s comparison).",
    "Histories: the events of slaveSync's current run at the end, and how many runs it took",
    '(continue-as-new).',
  ],
  header:
    '| date | minutes | saves (answered / failed) | save answered, p50 / p99 / max | RSS master worker, start → end | RSS slave workers, start → end | RSS orchestration worker, start → end | every block once, rows the same | slaveSync histories (events; runs) |',
};

const cluster = await startClusterInProcesses('soak');
const { master, slaveDbs, slaves, checksum, endpoints } = cluster;
try {
  const answered: number[] = [];
  const failures: string[] = [];
  let made = 0;
  const save = async (n: number) => {
    const start = performance.now();
    try {
      await saveBook(endpoints[n % 2]!, checksum, n, `soak-${n}`);
      answered.push(performance.now() - start);
    } catch (err) {
      failures.push((err as Error).message);
    }
  };

  const rss = cluster.rss;
  const durationMs = MINUTES * 60_000;
  const started = performance.now();
  let startRss: Record<string, number> | undefined;
  let nextSample = started + WARM_UP_MS;
  const inFlight = new Set<Promise<void>>();
  console.log(`soak: ${SAVES_PER_SECOND} saves/s through ${slaves.map((s) => s.name).join(' and ')} for ${MINUTES} min`);
  // Open loop: each save leaves at its time, whether or not the ones before it were answered.
  while (performance.now() - started < durationMs) {
    const due = Math.floor(((performance.now() - started) * SAVES_PER_SECOND) / 1000);
    while (made < due) {
      const p = save(++made).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (performance.now() >= nextSample) {
      const sample = rss();
      startRss ??= sample;
      const elapsed = Math.round((performance.now() - started) / 1000);
      console.log(
        `soak: ${elapsed} s, ${answered.length} answered, ${failures.length} failed, ${inFlight.size} in flight, RSS MiB ${JSON.stringify(sample)}`,
      );
      nextSample += SAMPLE_EVERY_MS;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inFlight);
  const endRss = rss();
  startRss ??= endRss;

  // Every block once on every slave, and the master's rows.
  const newest = async (db: Database) => {
    const { rows } = await db.query<{ n: string; low: string | null; high: string | null }>(
      'SELECT count(*) AS n, min(seq) AS low, max(seq) AS high FROM lp_commitblocks',
    );
    return { count: Number(rows[0]!.n), low: Number(rows[0]!.low ?? 0), high: Number(rows[0]!.high ?? 0) };
  };
  const masterAt = (await newest(master)).high;
  const once: string[] = [];
  for (const [i, db] of slaveDbs.entries()) {
    const deadline = Date.now() + 60_000;
    let at = await newest(db);
    while (at.high < masterAt && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      at = await newest(db);
    }
    const contiguous = at.low === 1 && at.count === at.high && at.high === masterAt;
    const differences = await compareReplicas(master, db, LIBRARY_V1);
    once.push(
      `${slaves[i]!.name}: ${contiguous ? `blocks 1..${at.high} once` : `${at.count} blocks from ${at.low} to ${at.high} of the master's ${masterAt}`}, ${differences.length === 0 ? 'rows the same' : `${differences.length} tables differ`}`,
    );
  }
  const histories: string[] = [];
  for (const s of slaves) {
    const handle = cluster.temporal.workflow.getHandle(workflowIds.slaveSync(s.name));
    const description = await handle.describe();
    let runs = 0;
    for await (const _ of cluster.temporal.workflow.list({ query: `WorkflowId = '${workflowIds.slaveSync(s.name)}'` })) runs++;
    histories.push(`${s.name}: ${description.historyLength}; ${runs}`);
  }
  const workers = (names: string[], from: Record<string, number>, to: Record<string, number>) =>
    names.map((n) => `${from[n]} → ${to[n]} MiB`).join(', ');
  const fmt = (ms: number) => (ms < 10 ? ms.toFixed(1) : ms.toFixed(0));
  const row =
    `| ${new Date().toISOString().slice(0, 10)} | ${MINUTES} | ${answered.length} / ${failures.length} | ` +
    `${fmt(percentile(answered, 50))} / ${fmt(percentile(answered, 99))} / ${fmt(answered.reduce((a, b) => Math.max(a, b), 0))} ms | ` +
    `${workers(['master'], startRss, endRss)} | ${workers(
      slaves.map((s) => s.name),
      startRss,
      endRss,
    )} | ${workers(['orchestration'], startRss, endRss)} | ${once.join('; ')} | ${histories.join('; ')} |`;
  console.log(row);
  if (failures.length > 0) console.log(`soak: the first failures: ${failures.slice(0, 5).join(' | ')}`);
  appendBenchmarkRow(TABLE, row);
} finally {
  await cluster.close();
}
