/**
 * An operator's day with the lesson commands, on a real cluster (Apache satellites behind
 * HAProxy, rsync, PostgreSQL, the Temporal server), each command its own process: start a
 * lesson and watch it, see it halt on a broken satellite with the reason and the command
 * that resumes it, fix it, resume from the CLI, watch it finish, read the reports; the
 * webhook hears of the halt, and the workers' Prometheus endpoint has the rollout's figures.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { satelliteTaskQueue } from '../src/shared/names';
import { alertReceiver } from './helpers/alertReceiver';
import { metricsAddress, samplesOf, scrape, valueOf } from './helpers/metrics';
import { drop, preparationTestBed, servedVersions, smallSample } from './helpers/preparation';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('lessonplan lesson: start, watch, halt on a broken satellite, resume', async () => {
  let marker = '';
  const receiver = await alertReceiver();
  // The workers of this cluster run in this process; their Prometheus endpoint is here.
  const metrics = await metricsAddress();
  // girl-1's examination fails while the marker exists (its test data broken); everything else passes.
  const { config, configFile, ops } = await preparationTestBed('lesson-cli', (raw) => {
    marker = path.join(path.dirname(path.dirname(raw.reference.lessonsDir)), 'girl-1-broken');
    const girl1 = raw.satellites.find((s: { name: string }) => s.name === 'girl-1');
    raw.alerts = { webhook: receiver.url };
    raw.metrics = { bindAddress: metrics };
    raw.reference.testCommand = [
      'node',
      '-e',
      `const broken = require('node:fs').existsSync(${JSON.stringify(marker)}) && process.env.LESSON_URL.includes(':${girl1.webServer.examPort}');
       if (broken) { console.error('girl-1: search index corrupt'); process.exit(3); }`,
    ];
  });
  /**
   * The command under a pseudo-terminal (util-linux `script`). Its -c takes one command line
   * for a shell: it is built here only from the test's own paths, each single-quoted.
   */
  const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
  const inTerminal = (...args: string[]) =>
    execa('script', ['-qfec', ['node', BIN, '--config', configFile, ...args].map(quote).join(' '), '/dev/null'], {
      reject: false,
      env: { NO_COLOR: '1', TERM: 'xterm', COLUMNS: '160', LINES: '50' },
    });
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });

  test(
    'the halt is shown in plain words with the resume command; after the fix, resume from the CLI finishes the lesson',
    { timeout: 300_000 },
    async () => {
      await drop(ops, smallSample(config, 80, 20));
      writeFileSync(marker, 'broken');

      const started = await lessonplan('lesson', 'start', '--watch');
      assert.equal(started.exitCode, 1, `watching a run that halts ends with exit 1\n${started.stdout}\n${started.stderr}`);
      assert.match(started.stdout, /^started prepare-lesson\/teacher-lesson-cli/);
      assert.match(started.stdout, /prepareLesson: proof-reading/, 'progress lines while it runs');
      assert.match(started.stdout, /HALTED in .*examination of group girls \(girl-1\) since .*girl-1: search index corrupt/s);
      assert.match(started.stdout, /after the fix: lessonplan lesson resume/);

      // The operators' webhook heard of it, with the reason and the command.
      const [halt] = await receiver.waitFor(1);
      assert.equal(halt!.alert.kind, 'rollout-halted');
      assert.match(halt!.alert.reason, /girl-1: search index corrupt/);
      assert.match(halt!.alert.resumeCommand!, /^lessonplan lesson resume \d{8}-\d{6}-[0-9a-f]{6}$/);

      const status = await lessonplan('lesson', 'status');
      assert.equal(status.exitCode, 1);
      assert.match(status.stdout, /girl-1 +failed .*examination FAILED: .*search index corrupt/s);
      assert.match(status.stdout, /boy-1 +serving-new/, 'the first group serves the new lesson');

      rmSync(marker); // the operator's fix
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
          `a bar for ${s.name}`,
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

      // What Prometheus scrapes from the workers: the SDK's figures and the rollout's own.
      const samples = await scrape(metrics);
      assert.ok(
        samplesOf(samples, 'temporal_activity_execution_latency_count', { task_queue: satelliteTaskQueue('girl-1') }).length > 0,
        `the SDK's own metrics, per task queue: ${[...new Set(samples.map((x) => x.name))].filter((n) => n.startsWith('temporal_')).join(' ')}`,
      );
      for (const s of config.satellites) {
        assert.ok((valueOf(samples, 'lessonplan_bytes_copied_total', { satellite: s.name }) ?? 0) > 0, `bytes copied to ${s.name}`);
      }
      assert.equal(valueOf(samples, 'lessonplan_examination_failures_total', { satellite: 'girl-1' }), 1, "girl-1's failed examination");
      assert.equal(valueOf(samples, 'lessonplan_examination_failures_total', { satellite: 'boy-1' }), undefined);
      for (const group of ['boys', 'girls']) {
        assert.equal(valueOf(samples, 'lessonplan_group_rollout_seconds_count', { group }), 1, `one rollout of group ${group}`);
      }
      const seconds = (group: string) => valueOf(samples, 'lessonplan_group_rollout_seconds_sum', { group })!;
      assert.ok(seconds('girls') > seconds('boys'), 'the halted group was out of service longer');
    },
  );
});
