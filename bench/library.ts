/**
 * `npm run bench`, the library example: a cluster of its own (examples/library) on the
 * real parts: the reference updates a SQLite database and its full-text index with the
 * example's scripts, four satellites in two groups serve it with the example's own web
 * application behind HAProxy, each with an examination instance beside it. A first lesson
 * of 5000 books, then two that each add 250 and change 100, rolled out under a query load:
 * one in the source document's order (groups.copy: out-of-service), one copying while
 * serving. Appends one row per rollout to BENCHMARKS.md: the lesson's files and bytes
 * changed, what rsync copied to the satellites, the requests through HAProxy, the
 * mixed-version window, the satellite-seconds out of service, and the rollout's wall
 * time against its critical path.
 */
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/load';
import { startLoad } from '../src/cluster/loadGenerator';
import { enrollClass } from '../src/operator/enroll';
import { startPrepareLesson } from '../src/operator/prepare';
import { formatBytes } from '../src/operator/progress';
import type { PreparationStatus } from '../src/shared/preparation';
import type { RolloutStatus } from '../src/shared/rollout';
import { freeStablePort } from '../src/stack/ports';
import { writeTestConfig } from '../test/helpers/testConfig';
import { appendBenchmarkRow, onLocalCluster, rolloutTimes } from './rollout';

const EXAMPLE = path.resolve(import.meta.dirname, '../examples/library');
const python = (script: string, ...args: string[]) => ['python3', '-B', path.join(EXAMPLE, script), ...args];
const WORDS = ['amber', 'harbour', 'lantern', 'meadow', 'quarry', 'saffron', 'thistle', 'willow', 'cobalt', 'falcon'];
const book = (id: number, edition = 1) =>
  JSON.stringify({
    id,
    title: `The ${WORDS[id % WORDS.length]} ${WORDS[Math.floor(id / 10) % WORDS.length]} of volume${id}${edition > 1 ? ` edition${edition}` : ''}`,
    author: `Author ${id % 97}`,
    year: 1900 + (id % 120),
  });

const ORDERS = [
  ["the source's order", 'out-of-service'],
  ['copying while serving', 'while-serving'],
] as const;

export async function benchLibrary(satellites = 4, books = 5000, added = 250, changed = 100): Promise<string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-bench-library-'));
  chmodSync(dir, 0o755);
  const feed = path.join(dir, 'feed');
  mkdirSync(feed);
  const taken = new Set<number>();
  const ports: number[] = [];
  while (ports.length < 2 * satellites + 1) ports.push(await freeStablePort(taken));
  const file = writeTestConfig(dir, (raw) => {
    raw.reference.servedDir = './reference/served';
    raw.reference.subjects = [
      {
        name: 'library',
        check: python('scripts/check.py', '--feed', feed),
        prepare: [python('scripts/update.py', '--feed', feed), python('scripts/build-index.py')],
        proofRead: { commands: [python('scripts/test.py')], queries: ['/index/books/1.json'] },
        owns: ['db/', 'index/'],
      },
    ];
    raw.satellites = Array.from({ length: satellites }, (_, i) => {
      const group = i < satellites / 2 ? 'boys' : 'girls';
      const name = `${group === 'boys' ? 'boy' : 'girl'}-${i + 1}`;
      const service = (action: string) => python('app/service.py', action, '--state-dir', `./satellites/${name}/app`);
      return {
        name,
        group,
        dataDir: `./satellites/${name}`,
        url: `http://127.0.0.1:${ports[i]}/`,
        webServer: {
          kind: 'own',
          port: ports[i],
          lessonLink: `./satellites/${name}/serving`,
          examination: { port: ports[satellites + i], lessonLink: `./satellites/${name}/examining` },
          services: [{ name: 'library', start: service('start'), stop: service('stop'), isUp: service('isup') }],
        },
      };
    });
    raw.loadBalancer.frontendPort = ports.at(-1);
  });
  const config = loadConfig(file);
  mkdirSync(config.reference.servedDir!, { recursive: true });
  const feedFile = path.join(feed, 'books.jsonl');
  writeFileSync(feedFile, Array.from({ length: books }, (_, i) => book(i + 1)).join('\n') + '\n');
  return onLocalCluster(config, dir, async (operator) => {
    await enrollClass(operator.client, config);
    const first = (await (await startPrepareLesson(operator.client, config, 'bench')).result()) as PreparationStatus;
    if (first.phase !== 'done') throw new Error(`the first library lesson ended ${first.phase}: ${first.summary}`);
    const rows: string[] = [];
    let served = first.lessonId;
    let total = books;
    for (const [run, copy] of ORDERS) {
      // New books at the end, and new editions of some old ones (their rows change in place).
      const next = [
        ...Array.from({ length: added }, (_, i) => book(total + i + 1)),
        ...Array.from({ length: changed }, (_, i) => book(1 + i * Math.floor(books / changed), rows.length + 2)),
      ];
      total += added;
      appendFileSync(feedFile, next.join('\n') + '\n');
      const before = served;
      const load = startLoad({
        baseUrl: `http://127.0.0.1:${ports.at(-1)}`,
        paths: ['/version', '/index/books/1.json', '/search?q=lantern', '/version'],
        concurrency: 4,
        maxRequests: 500_000,
        maxDurationMs: 300_000,
        classify: (urlPath, status, body) =>
          status !== 200 ? 'neither' : urlPath !== '/version' ? 'either' : body.trim() === before ? 'old' : 'new',
      });
      const handle = await startPrepareLesson(operator.client, { ...config, groups: { ...config.groups, copy } }, 'bench');
      // The load stops however the lesson ends.
      const second = (await handle.result().catch(async (err: unknown) => {
        await load.stop();
        throw err;
      })) as PreparationStatus;
      const traffic = await load.stop();
      if (second.phase !== 'done' || !second.rollout) throw new Error(`the library lesson ended ${second.phase}: ${second.summary}`);
      served = second.lessonId;
      const rollout = operator.client.workflow.getHandle(second.rollout.workflowId);
      const status = (await rollout.result()) as RolloutStatus;
      const { wall, critical } = rolloutTimes((await rollout.fetchHistory()).events ?? []);
      const stats = second.stats!;
      const sats = status.groups.flatMap((g) => g.satellites);
      const copiedFiles = sats.reduce((n, s) => n + s.filesCopied, 0);
      const copied = sats.reduce((n, s) => n + s.bytesCopied, 0);
      const sent = sats.reduce((n, s) => n + s.bytesSent, 0);
      const capacity = status.capacity!;
      rows.push(
        [
          '',
          new Date().toISOString().slice(0, 10),
          `library example, ${total - added} + ${added} new and ${changed} changed books, ${satellites} satellites in ${status.groups.length} groups, ${run}`,
          `${stats.files} files (${formatBytes(stats.totalBytes)}); ${stats.filesAdded} added, ${stats.filesChanged} changed, ${stats.filesRemoved} removed (${formatBytes(stats.bytesChanged)})`,
          `${copiedFiles} files, ${formatBytes(copied)} changed, ${formatBytes(sent)} sent by rsync`,
          `${traffic.requests} requests, ${traffic.failed} failed`,
          `${traffic.mixedWindowMs} ms`,
          `${capacity.satelliteSecondsOut.toFixed(1)} satellite-s, never fewer than ${capacity.lowestServing} of ${capacity.satellites}`,
          `${(wall / 1000).toFixed(2)} s wall / ${(critical / 1000).toFixed(2)} s critical path = ${(wall / critical).toFixed(2)}×`,
          '',
        ]
          .join(' | ')
          .trim(),
      );
    }
    return rows;
  });
}

const LIBRARY_TABLE = {
  intro: [
    '## The library example',
    '',
    'Made by `npm run bench` (`bench/library.ts`): the library example (examples/library) with',
    'its own update, index build and test scripts on the reference and its own web application',
    'on four satellites, lessons that each add 250 books and change 100, rolled out under a',
    'query load through HAProxy (4 clients asking /version, a book and a full-text search).',
    'Lesson files: the filed lesson against the previous one (the database file changes in',
    'place, so it is copied whole: rsync --copy-dest, not hard links). Copied: the sum over the',
    'satellites. Out of service: the rollout\'s own figure, as in "Capacity while copying".',
    'Rollout time: the holdLesson run against its critical path, as above.',
  ],
  header: '| date | run | lesson files | copied to the satellites | load through HAProxy | mixed-version window | out of service | rollout time |',
};

for (const row of await benchLibrary()) {
  console.log(row);
  appendBenchmarkRow(LIBRARY_TABLE, row);
}
