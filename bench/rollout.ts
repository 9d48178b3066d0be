/**
 * `npm run bench`: rollouts on the real local cluster (Apache satellites behind HAProxy,
 * rsync, the Temporal dev server), under a bounded query load, for 4 and 8 satellites.
 * Appends one row per run to BENCHMARKS.md:
 *
 * - failed requests through HAProxy, and the mixed-version window;
 * - wall time of the rollout against its critical path (the time some activity or
 *   timer was running), the rest being orchestration overhead, per group;
 * - rsync bytes sent against the bytes of the files that changed.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { loadConfig } from '../src/config/load';
import { clusterDown, clusterUp } from '../src/cluster/localCluster';
import { classifyByAnswers, startLoad } from '../src/cluster/loadGenerator';
import { createLogger } from '../src/logging';
import { connectClient, type OperatorClient } from '../src/operator/client';
import type { ClusterConfig } from '../src/config/schema';
import { startHoldLesson } from '../src/operator/rollout';
import type { RolloutStatus } from '../src/shared/rollout';
import { freeStablePort } from '../src/stack/ports';
import { stackDown, stackUp } from '../src/stack/stack';
import { allRoles } from '../src/workers/roles';
import { startWorkers } from '../src/workers/runWorkers';
import { fileTestLesson } from '../test/helpers/lessons';
import { writeTestConfig } from '../test/helpers/testConfig';

const ROOT = path.resolve(import.meta.dirname, '..');
const log = createLogger('bench', { level: 'warn' });

/** Total time covered by the intervals (overlaps counted once). */
export function covered(intervals: [number, number][]): number {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let [start, end] = [Number.NaN, Number.NaN];
  for (const [a, b] of sorted) {
    if (Number.isNaN(start) || a > end) {
      if (!Number.isNaN(start)) total += end - start;
      [start, end] = [a, b];
    } else end = Math.max(end, b);
  }
  return Number.isNaN(start) ? total : total + end - start;
}

export const millis = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

async function benchRollout(satellites: number): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-bench-'));
  chmodSync(dir, 0o755);
  const taken = new Set<number>();
  const ports: number[] = [];
  while (ports.length < satellites * 2 + 1) ports.push(await freeStablePort(taken));
  const file = writeTestConfig(dir, (raw) => {
    raw.satellites = Array.from({ length: satellites }, (_, i) => {
      const group = i < satellites / 2 ? 'boys' : 'girls';
      const name = `${group === 'boys' ? 'boy' : 'girl'}-${i + 1}`;
      return {
        name,
        group,
        dataDir: `./satellites/${name}`,
        webServer: { kind: 'apache', port: ports[2 * i], examPort: ports[2 * i + 1] },
        url: `http://127.0.0.1:${ports[2 * i]}/`,
      };
    });
    raw.loadBalancer.frontendPort = ports.at(-1);
  });
  const config = loadConfig(file);
  return onLocalCluster(config, dir, async (operator) => {
    const first = await fileTestLesson(config.reference.lessonsDir, 'bench-1');
    await (await startHoldLesson(operator.client, config, first.filed, 'bench')).result();
    const next = await fileTestLesson(config.reference.lessonsDir, 'bench-2', first);
    const load = startLoad({
      baseUrl: `http://127.0.0.1:${config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0}`,
      paths: [...first.answers.keys()].filter((p) => p !== '/records/bulk.json'),
      concurrency: 4,
      maxRequests: 500_000,
      maxDurationMs: 300_000,
      classify: classifyByAnswers(first.answers, next.answers),
    });
    const handle = await startHoldLesson(operator.client, config, next.filed, 'bench');
    const status = (await handle.result()) as RolloutStatus;
    const result = await load.stop();

    const { wall, critical } = rolloutTimes((await handle.fetchHistory()).events ?? []);
    const groups = status.groups.length;
    const sats = status.groups.flatMap((g) => g.satellites);
    const sent = sats.reduce((n, s) => n + s.bytesSent, 0);
    const changed = sats.reduce((n, s) => n + s.bytesCopied, 0);
    return `| ${new Date().toISOString().slice(0, 10)} | rollout, ${satellites} satellites in ${groups} groups | ${result.requests} requests, ${result.failed} failed | ${result.mixedWindowMs} ms | ${(wall / 1000).toFixed(2)} s wall / ${(critical / 1000).toFixed(2)} s critical path = ${(wall / critical).toFixed(2)}×; ${((wall - critical) / groups).toFixed(0)} ms orchestration per group | ${sent} sent / ${changed} changed = ${(sent / changed).toFixed(3)} |`;
  });
}

/** Runs `bench` with the embedded stack, the local cluster and every role's worker up, then takes them all down and removes `dir`. */
export async function onLocalCluster<T>(config: ClusterConfig, dir: string, bench: (operator: OperatorClient) => Promise<T>): Promise<T> {
  await stackUp(config, log);
  try {
    await clusterUp(config, log);
    const workers = await startWorkers(config, allRoles(config), log);
    const operator = await connectClient(config);
    try {
      return await bench(operator);
    } finally {
      await operator.close();
      workers.shutdown();
      await workers.done;
    }
  } finally {
    await clusterDown(config, log);
    await stackDown(config, log);
    rmSync(dir, { recursive: true, force: true });
  }
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

/** A rollout's wall time (first to last event of its history) and its critical path (some activity or timer running). */
export function rolloutTimes(events: HistoryEvent[]): { wall: number; critical: number } {
  const wall = millis(events.at(-1)!.eventTime) - millis(events[0]!.eventTime);
  const started = new Map<string, number>();
  const intervals: [number, number][] = [];
  for (const e of events) {
    const t = millis(e.eventTime);
    if (e.activityTaskScheduledEventAttributes || e.timerStartedEventAttributes) started.set(String(e.eventId), t);
    const ended =
      e.activityTaskCompletedEventAttributes?.scheduledEventId ??
      e.activityTaskFailedEventAttributes?.scheduledEventId ??
      e.timerFiredEventAttributes?.startedEventId;
    if (ended !== undefined && ended !== null && started.has(String(ended))) intervals.push([started.get(String(ended))!, t]);
  }
  return { wall, critical: covered(intervals) };
}

export const BENCHMARKS_FILE = path.join(ROOT, 'BENCHMARKS.md');

/**
 * Adds a row at the end of the BENCHMARKS.md table whose header line is `table.header`
 * (so each bench keeps its rows in its own table); when the table is not there yet, it
 * is written at the end of the file first, after its intro paragraph.
 */
export function appendBenchmarkRow(table: { intro: string[]; header: string }, row: string, file = BENCHMARKS_FILE): void {
  const lines = (existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks').replace(/\n+$/, '').split('\n');
  let at = lines.indexOf(table.header);
  if (at < 0) {
    const columns = table.header.split('|').length - 2;
    lines.push('', ...table.intro, '', table.header, `|${'---|'.repeat(columns)}`);
    at = lines.length - 2;
  }
  let end = at + 1;
  while (end < lines.length && lines[end]!.startsWith('|')) end++;
  lines.splice(end, 0, row);
  writeFileSync(file, `${lines.join('\n')}\n`);
}

const ROLLOUT_TABLE = {
  intro: [
    'Made by `npm run bench` on this machine kind (2 cores); each run appends its rows. Targets and',
    'reference points: README, "Benchmarks". The critical path is the time during which some',
    'activity or timer of the rollout was running; the rest of the wall time is orchestration.',
    'rsync figures: bytes sent over the pipe against the size of the files that changed.',
  ],
  header: '| date | run | load through HAProxy | mixed-version window | rollout time | rsync |',
};

// Run as a script (not imported by another bench for the helpers above).
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  for (const satellites of [4, 8]) {
    const row = await benchRollout(satellites);
    console.log(row);
    appendBenchmarkRow(ROLLOUT_TABLE, row);
  }
}
