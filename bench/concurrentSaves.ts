/**
 * Part of `npm run bench` (runnable alone: `node --import tsx bench/concurrentSaves.ts`):
 * 32 clients saving at once through one slave's save endpoint, each save answered once
 * applied there, with every role in its own process as in production
 * (bench/clusterInProcesses.ts). bench/replication.ts measures the same load with the
 * roles in its own process, where the load and the workers share one event loop.
 *
 * One round of 32 clients × 25 saves warms the processes up; the next rounds are
 * measured. Beside the answer times it reports where the machine's CPU went, per save
 * and per process, since on this 2-core machine kind that is what bounds the figure: 32
 * clients in a closed loop wait 32 / (saves per second) on average.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { percentile } from '../src/operator/replicationDemo';
import { saveBook, startClusterInProcesses } from './clusterInProcesses';
import { appendBenchmarkRow } from './rollout';

const CLIENTS = 32;
const SAVES_EACH = 25;
const MEASURED_ROUNDS = 3;

const TABLE = {
  intro: [
    '## 32 clients saving through one slave, every role in its own process',
    '',
    'Made by `npm run bench` (bench/concurrentSaves.ts): 32 clients, each saving one row 25 times',
    "in a row through slave-1's save endpoint (answered once applied on slave-1), with the master",
    "worker, each slave's worker and the orchestration worker each in its own process, on the",
    'embedded PostgreSQL and the Temporal dev server. A first round warms up; the figures are of',
    'the rounds after it. "Busy" is the share of both cores in use during them; CPU per save is',
    'the CPU time of each process (from /proc) over the saves made; "load" is the 32 clients.',
  ],
  header: '| date | saves measured | answered, p50 / p99 / max | saves/s | machine busy | CPU ms per save, by process |',
};

/** The machine's CPU counters since boot: every field of /proc/stat's first line. */
const machineTicks = () => readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);

const cluster = await startClusterInProcesses('concurrent');
try {
  const endpoint = cluster.endpoints[0]!;
  let next = 0;
  const round = async (): Promise<number[]> => {
    const answered: number[] = [];
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let i = 0; i < SAVES_EACH; i++) {
          const id = ++next;
          const start = performance.now();
          await saveBook(endpoint, cluster.checksum, id, `concurrent-${id}`);
          answered.push(performance.now() - start);
        }
      }),
    );
    return answered;
  };
  console.log(
    `concurrentSaves: a warm-up round, then ${MEASURED_ROUNDS} rounds of ${CLIENTS} clients × ${SAVES_EACH} saves through ${endpoint.slave}`,
  );
  await round();
  const ticks0 = machineTicks();
  const cpu0 = cluster.cpuMs();
  const t0 = performance.now();
  const answered: number[] = [];
  for (let r = 0; r < MEASURED_ROUNDS; r++) answered.push(...(await round()));
  const ms = performance.now() - t0;
  const cpu1 = cluster.cpuMs();
  const ticks = machineTicks().map((v, i) => v - ticks0[i]!);
  // Fields 4 and 5 of the line are idle and iowait.
  const busy = 1 - (ticks[3]! + ticks[4]!) / ticks.reduce((a, b) => a + b, 0);
  const perSave = Object.entries(cpu1)
    .map(([who, total]) => [who, (total - (cpu0[who] ?? 0)) / answered.length] as const)
    .filter(([, v]) => v >= 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([who, v]) => `${who} ${v.toFixed(2)}`)
    .join(', ');
  const f = (v: number) => v.toFixed(0);
  const row =
    `| ${new Date().toISOString().slice(0, 10)} | ${answered.length} | ` +
    `${f(percentile(answered, 50))} / ${f(percentile(answered, 99))} / ${f(Math.max(...answered))} ms | ` +
    `${Math.round((answered.length * 1000) / ms)} | ${Math.round(busy * 100)} % | ${perSave} |`;
  console.log(row);
  appendBenchmarkRow(TABLE, row);
} finally {
  await cluster.close();
}
