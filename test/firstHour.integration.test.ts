/**
 * The README's "An operator's first hour", as a newcomer types it, each command its own
 * process on a real cluster (Apache satellites behind HAProxy, rsync, PostgreSQL, the
 * Temporal server): the workers in a process of their own (`lessonplan worker
 * all-in-one`), the class list enrolled, subject matter into the inbox, a lesson started
 * and watched; another program takes girl-1's examination port, so the rollout halts
 * with the reason and the command that resumes it; after the fix, resume from the CLI
 * and watch it finish on a terminal; the reports. Meanwhile the webhook hears of the
 * halt and the worker's Prometheus endpoint has the rollout's figures.
 * (Bringing the stack up is the main job's test; resuming from the UI, temporalUi's.)
 */
import { apacheOf } from '../src/activities/satellite/apache';
import assert from 'node:assert/strict';
import { createWriteStream, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { satelliteTaskQueue } from '../src/shared/names';
import { alertReceiver } from './helpers/alertReceiver';
import { testCluster } from './helpers/cluster';
import { metricsAddress, samplesOf, scrape, valueOf } from './helpers/metrics';
import { servedVersions, smallSample } from './helpers/preparation';
import { onTeardown } from './helpers/stack';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

/** The last frame a terminal showed, without its control sequences: what a failed match prints. */
const lastScreen = (out: string) =>
  out
    .replace(/\x1B\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r?\n/)
    .slice(-12)
    .join('\n');

describe("an operator's first hour, from the README", async () => {
  const receiver = await alertReceiver();
  const metrics = await metricsAddress();
  const { config, configFile, dir } = await testCluster('first-hour', (raw) => {
    raw.alerts = { webhook: receiver.url };
    raw.metrics = { bindAddress: metrics };
  });
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });
  /**
   * The command under a pseudo-terminal (util-linux `script`). Its -c takes one command line
   * for a shell: it is built here only from the test's own paths, each single-quoted.
   * The terminal is 160 columns wide: a pseudo-terminal that `script` makes without a terminal
   * of its own has no size, which a program reads as 0 columns (cli-progress then cuts lines at
   * 80, and a line of a lesson over 100 kB lost its last letter); COLUMNS does not change that.
   */
  const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
  const inTerminal = (...args: string[]) =>
    execa('script', ['-qfec', `stty cols 160 rows 50 && exec ${['node', BIN, '--config', configFile, ...args].map(quote).join(' ')}`, '/dev/null'], {
      reject: false,
      env: { NO_COLOR: '1', TERM: 'xterm' },
    });

  // "In a second terminal: lessonplan worker all-in-one"; its log kept beside the cluster.
  const workerLog = path.join(dir, 'worker.log');
  const worker = execa('node', [BIN, '--config', configFile, 'worker', 'all-in-one'], {
    reject: false,
    all: true,
    env: { LESSONPLAN_LOG_FORMAT: 'json' },
  });
  worker.all!.pipe(createWriteStream(workerLog));
  onTeardown(async () => {
    worker.kill('SIGTERM');
    const ended = await worker;
    assert.ok(ended.exitCode === 0 || ended.signal === 'SIGTERM', `the worker stopped cleanly (see ${workerLog})`);
  });

  /** Another program on girl-1's examination port: her examination's web server cannot start. */
  const girl1 = apacheOf(config.satellites.find((s) => s.name === 'girl-1')!);
  let squatter: Server | undefined;

  test('enroll, fill the inbox, start and watch a lesson, see it halt, resume after the fix', { timeout: 300_000 }, async () => {
    const enrolled = await lessonplan('enroll');
    assert.equal(enrolled.exitCode, 0, enrolled.stderr);
    const machines = 1 + config.satellites.length + (config.master ? 1 : 0) + config.slaves.length;
    assert.match(enrolled.stdout, new RegExp(`class list of test recorded: ${machines} enrolled`));

    // A file that does not check out puts nothing in the inbox.
    const bad = path.join(dir, 'bad-items.json');
    writeFileSync(
      bad,
      JSON.stringify([
        { subject: 'records', kind: 'record', externalId: 'b-1', payload: { title: 'ok', fields: {} } },
        { subject: 'socks', kind: 'record', externalId: 'b 2', payload: {} },
      ]),
    );
    const refused = await lessonplan('inbox', 'add', bad);
    assert.equal(refused.exitCode, 2);
    assert.match(refused.stderr, /bad-items\.json: \[1\]\.subject: "socks" is not one of the config's subjects \(records, documents\)/);
    const items = path.join(dir, 'items.json');
    writeFileSync(items, JSON.stringify(smallSample(config, 80, 20)));
    const added = await lessonplan('inbox', 'add', items);
    assert.equal(added.exitCode, 0, added.stderr);
    const inbox = JSON.parse((await lessonplan('--json', 'inbox', 'status')).stdout) as { subjects: { subject: string; waiting: number }[] };
    assert.deepEqual(
      inbox.subjects.map((s) => [s.subject, s.waiting]),
      [
        ['records', 80],
        ['documents', 20],
      ],
    );

    squatter = createServer();
    await new Promise<void>((resolve) => squatter!.listen(girl1.webServer.examPort, '127.0.0.1', resolve));

    const started = await lessonplan('lesson', 'start', '--watch');
    assert.equal(started.exitCode, 1, `watching a run that halts ends with exit 1\n${started.stdout}\n${started.stderr}`);
    assert.match(started.stdout, /^started prepare-lesson\/teacher-first-hour/);
    assert.match(started.stdout, /prepareLesson: proof-reading/, 'progress lines while it runs');
    assert.match(started.stdout, /HALTED in .*examination of group girls \(girl-1\) since .*Address already in use/s);
    assert.match(started.stdout, /after the fix: lessonplan lesson resume/);

    // The operators' webhook heard of it, with the reason and the command.
    const [halt] = await receiver.waitFor(1);
    assert.equal(halt!.alert.kind, 'rollout-halted');
    assert.match(halt!.alert.reason, new RegExp(`could not bind to address 127\\.0\\.0\\.1:${girl1.webServer.examPort}`));
    assert.match(halt!.alert.resumeCommand!, /^lessonplan lesson resume \d{8}-\d{6}-[0-9a-f]{6}$/);

    const status = await lessonplan('lesson', 'status');
    assert.equal(status.exitCode, 1);
    assert.match(status.stdout, /girl-1 +failed/);
    // Copying while serving (the default): the halt comes before any satellite left the load balancer.
    assert.match(status.stdout, /boy-1 +passed/, 'the other satellites passed and wait for the switch');

    await new Promise((resolve) => squatter!.close(resolve)); // the operator's fix
    const resumed = await lessonplan('lesson', 'resume');
    assert.equal(resumed.exitCode, 0, resumed.stderr);
    assert.match(resumed.stdout, /^resume sent to hold-lesson\//);

    // Watched from a terminal this time: `script` gives the command a pseudo-terminal, so it draws bars.
    const watched = await inTerminal('lesson', 'watch');
    assert.equal(watched.exitCode, 0, watched.stdout);
    assert.match(watched.stdout, /prepareLesson done: /);
    for (const s of config.satellites) {
      assert.match(
        watched.stdout,
        new RegExp(`${s.group}/${s.name} +\\|[█░]+\\| serving-new, [0-9.]+ [kM]?B copied, exam passed`),
        `a bar for ${s.name}; the screen ended with:\n${lastScreen(watched.stdout)}`,
      );
    }
    assert.match(watched.stdout, /boys +\|█+\| serving-new/, 'a bar for the group');
    const final = JSON.parse((await lessonplan('--json', 'lesson', 'status')).stdout) as { preparation: { status: { lessonId: string } } };
    assert.deepEqual(
      await servedVersions(config),
      config.satellites.map(() => final.preparation.status.lessonId),
      'every satellite serves the new lesson',
    );

    const reports = await lessonplan('reports');
    assert.equal(reports.exitCode, 0, reports.stderr);
    assert.match(reports.stdout, /halted +holdLesson/);
    assert.match(reports.stdout, /ok +prepareLesson/);
    assert.match(reports.stdout, /ok +enrollClass/);

    // What Prometheus scrapes from the worker: the SDK's figures and the rollout's own.
    const samples = await scrape(metrics);
    assert.ok(
      samplesOf(samples, 'temporal_activity_execution_latency_count', { task_queue: satelliteTaskQueue('girl-1') }).length > 0,
      `the SDK's own metrics, per task queue: ${[...new Set(samples.map((x) => x.name))].filter((n) => n.startsWith('temporal_')).join(' ')}`,
    );
    for (const s of config.satellites) {
      assert.ok((valueOf(samples, 'lessonplan_bytes_copied_total', { satellite: s.name }) ?? 0) > 0, `bytes copied to ${s.name}`);
    }
    assert.ok((valueOf(samples, 'lessonplan_examination_failures_total', { satellite: 'girl-1' }) ?? 0) >= 1, "girl-1's failed examination");
    assert.equal(valueOf(samples, 'lessonplan_examination_failures_total', { satellite: 'boy-1' }), undefined);
    for (const group of ['boys', 'girls']) {
      assert.equal(valueOf(samples, 'lessonplan_group_rollout_seconds_count', { group }), 1, `one rollout of group ${group}`);
    }
  });

  test(
    'the built-in sample data goes into the inbox: after the first batch (taken above), the next one of changes',
    { timeout: 60_000 },
    async () => {
      const sample = await lessonplan('inbox', 'sample');
      assert.equal(sample.exitCode, 0, sample.stderr);
      assert.match(sample.stdout, /^sample batch 1: 100 items in the inbox/);
      const inbox = JSON.parse((await lessonplan('--json', 'inbox', 'status')).stdout) as { subjects: { subject: string; waiting: number }[] };
      assert.deepEqual(
        inbox.subjects.map((s) => [s.subject, s.waiting]),
        [
          ['records', 60],
          ['documents', 40],
        ],
        '60 corrected records and 40 new articles wait; what the last lesson took does not',
      );
    },
  );
});
