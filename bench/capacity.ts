/**
 * `npm run bench`, capacity while copying: the same cluster and lessons rolled out in the
 * source document's order (each group out for its copy and examination) and copying
 * while serving, in one run; a rollback to the lesson before beside the rollouts; and the
 * whole-cluster switch of 16 satellites in 4 groups beside the source's order with the
 * groups rejoining one by one. Real Apache satellites behind HAProxy, rsync, the Temporal
 * dev server, a query load through HAProxy the whole time. Appends one row per run to
 * BENCHMARKS.md: requests and failures, the mixed-version window measured from outside,
 * satellite-seconds out of service and the fewest satellites serving (the rollout's own
 * figures), and the wall time.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { loadConfig } from '../src/config/load';
import { classifyByAnswers, startLoad, type LoadResult } from '../src/cluster/loadGenerator';
import type { OperatorClient } from '../src/operator/client';
import { startHoldLesson, startRollBack } from '../src/operator/rollout';
import type { RolloutStatus } from '../src/shared/rollout';
import { freeStablePort } from '../src/stack/ports';
import { fileTestLesson, type TestLesson } from '../test/helpers/lessons';
import { writeTestConfig } from '../test/helpers/testConfig';
import { appendBenchmarkRow, onLocalCluster } from './rollout';
import { fileFolderAsLesson } from '../src/operator/fileLesson';
import { openDatabase } from '../src/db/database';
import { databaseUrl } from '../src/stack/endpoints';

const TABLE = {
  intro: [
    '## Capacity while copying',
    '',
    'Made by `npm run bench` (bench/capacity.ts) on this machine kind (2 cores). Each run rolls the',
    'same lessons out to the same cluster under a query load through HAProxy. "Out of service" is the',
    "rollout's own figure: satellite-seconds during which a satellite took no users, and the fewest",
    'serving at any moment. The mixed-version window is measured from outside (first new answer to',
    'last old one). The source order is groups.copy: out-of-service; copy while serving is the default.',
  ],
  header: '| date | run | lesson | load through HAProxy | mixed-version window | out of service | wall time |',
};

interface Shape {
  groups: Record<string, number>;
  /** groups.* of the config: copy order, consistency, floor. */
  plan: Record<string, unknown>;
  /** The copy's cap per satellite (KiB/s). */
  copyBandwidthLimit?: number;
}

async function clusterConfig(dir: string, shape: Shape) {
  const taken = new Set<number>();
  const names = Object.entries(shape.groups).flatMap(([group, n]) => Array.from({ length: n }, (_, i) => ({ group, name: `${group}-${i + 1}` })));
  const ports: number[] = [];
  while (ports.length < names.length * 2 + 1) ports.push(await freeStablePort(taken));
  const file = writeTestConfig(dir, (raw) => {
    raw.satellites = names.map(({ group, name }, i) => ({
      name,
      group,
      dataDir: `./satellites/${name}`,
      webServer: { kind: 'apache', port: ports[2 * i], examPort: ports[2 * i + 1] },
      url: `http://127.0.0.1:${ports[2 * i]}/`,
      ...(shape.copyBandwidthLimit ? { copyBandwidthLimit: shape.copyBandwidthLimit } : {}),
    }));
    raw.groups = { order: Object.keys(shape.groups), ...shape.plan };
    raw.loadBalancer.frontendPort = ports.at(-1);
  });
  return loadConfig(file);
}

const loadOn = (frontend: string, from: TestLesson, to: TestLesson) =>
  startLoad({
    baseUrl: frontend,
    // The search files: what each lesson answers (the version file is written by filing; the big files only slow the load).
    paths: [...from.answers.keys()].filter((p) => p.startsWith('/search/')),
    concurrency: 4,
    maxRequests: 2_000_000,
    maxDurationMs: 900_000,
    classify: classifyByAnswers(from.answers, to.answers),
  });

/** Runs `start` under load from `from` to `to`; its result, the load's, and the wall time from its history. */
async function underLoad(frontend: string, from: TestLesson, to: TestLesson, start: () => Promise<WorkflowHandle>) {
  const load = loadOn(frontend, from, to);
  await new Promise((r) => setTimeout(r, 500));
  const handle = await start();
  const status = (await handle.result()) as RolloutStatus;
  await new Promise((r) => setTimeout(r, 500));
  const result = await load.stop();
  const { startTime, closeTime } = await handle.describe();
  return { status, result, wallSeconds: (closeTime!.getTime() - startTime.getTime()) / 1000 };
}

function row(run: string, lesson: string, m: { status: RolloutStatus; result: LoadResult; wallSeconds: number }): string {
  const c = m.status.capacity!;
  return `| ${new Date().toISOString().slice(0, 10)} | ${run} | ${lesson} | ${m.result.requests} requests, ${m.result.failed} failed | ${m.result.mixedWindowMs} ms | ${c.satelliteSecondsOut.toFixed(1)} satellite-s, never fewer than ${c.lowestServing} of ${c.satellites} | ${m.wallSeconds.toFixed(1)} s |`;
}

/** The source's order against copying while serving on one cluster, then `lessonplan lesson rollback`'s workflow. */
async function orders(): Promise<string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-bench-capacity-'));
  chmodSync(dir, 0o755);
  const bigFileBytes = 96 * 1024 * 1024;
  const config = await clusterConfig(dir, { groups: { boys: 2, girls: 2 }, plan: {}, copyBandwidthLimit: 16_384 });
  const frontend = `http://127.0.0.1:${config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0}`;
  const what = `${((bigFileBytes * 4) / 3 / 1024 / 1024).toFixed(0)} MiB changed, copy capped at 16 MiB/s per satellite`;
  return onLocalCluster(config, dir, async (operator: OperatorClient) => {
    const db = openDatabase(databaseUrl(config, config.reference.database), { applicationName: 'lessonplan-bench' });
    try {
      // Folders another pipeline built, filed as `lessonplan lesson file` does (so that the reference keeps their records for the rollback).
      const folders: TestLesson[] = [];
      const file = async () => {
        const folder = await fileTestLesson(path.join(dir, 'folders'), `folder-${folders.length + 1}`, folders.at(-1), undefined, { bigFileBytes });
        rmSync(path.join(folder.dir, 'version'));
        rmSync(path.join(folder.dir, '.lesson'), { recursive: true });
        folders.push(folder);
        return (await fileFolderAsLesson(config, db, folder.dir, ['/search/term0.json'])).lesson;
      };
      await (await startHoldLesson(operator.client, config, await file(), 'bench')).result();
      const rows: string[] = [];
      const plans = [
        ["the source's order", { copy: 'out-of-service' }],
        ['copy while serving, group by group', { copy: 'while-serving' }],
        ['copy while serving, whole-cluster switch', { copy: 'while-serving', consistency: 'whole-cluster' }],
      ] as const;
      for (const [run, plan] of plans) {
        const filed = await file();
        const m = await underLoad(frontend, folders.at(-2)!, folders.at(-1)!, () =>
          startHoldLesson(operator.client, { ...config, groups: { ...config.groups, ...plan } }, filed, 'bench'),
        );
        rows.push(row(`rollout, 4 satellites in 2 groups, ${run}`, what, m));
      }
      const back = await underLoad(frontend, folders.at(-1)!, folders.at(-2)!, () => startRollBack(operator.client, config, undefined, 'bench'));
      rows.push(row('rollback to the lesson before (lesson rollback), 4 satellites in 2 groups', 'kept on every satellite, nothing copied', back));
      return rows;
    } finally {
      await db.close();
    }
  });
}

/** 16 satellites in 4 groups: the whole-cluster switch against the source's order with each group rejoining at once. */
async function wholeCluster(): Promise<string[]> {
  const rows: string[] = [];
  for (const [run, plan] of [
    ["source's order, groups rejoin one by one (capacity-first)", { copy: 'out-of-service', consistency: 'capacity-first' }],
    ['copy while serving, whole-cluster switch', { copy: 'while-serving', consistency: 'whole-cluster' }],
  ] as const) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-bench-whole-'));
    chmodSync(dir, 0o755);
    const config = await clusterConfig(dir, { groups: { a: 4, b: 4, c: 4, d: 4 }, plan });
    const frontend = `http://127.0.0.1:${config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0}`;
    rows.push(
      await onLocalCluster(config, dir, async (operator) => {
        const first = await fileTestLesson(config.reference.lessonsDir, 'whole-1');
        await (await startHoldLesson(operator.client, config, first.filed, 'bench')).result();
        const next = await fileTestLesson(config.reference.lessonsDir, 'whole-2', first);
        const m = await underLoad(frontend, first, next, () => startHoldLesson(operator.client, config, next.filed, 'bench'));
        return row(`rollout, 16 satellites in 4 groups of 4, ${run}`, 'the test lesson (5 search files changed)', m);
      }),
    );
  }
  return rows;
}

for (const r of [...(await orders()), ...(await wholeCluster())]) {
  console.log(r);
  appendBenchmarkRow(TABLE, r);
}
