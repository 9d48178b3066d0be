/**
 * The main job, as `npm start` runs it (`lessonplan run`), on the local demo's config
 * with its own data folder and free ports: its own Temporal and PostgreSQL, four Apache
 * satellites behind HAProxy, the sample data set, a first lesson, then a measured lesson
 * under load. It must end with the summary and exit 0.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { execa } from 'execa';
import { freeStablePort } from '../src/stack/ports';
import { writeTestConfig } from './helpers/testConfig';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('the main job (lessonplan run)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-main-job-'));
  chmodSync(dir, 0o755);
  // Bound later by Apache, HAProxy and the master: distinct, and out of the kernel's ephemeral range.
  const taken = new Set<number>();
  const ports: number[] = [];
  while (ports.length < 10) ports.push(await freeStablePort(taken));
  const configFile = writeTestConfig(dir, (raw) => {
    raw.satellites.forEach((s: Record<string, any>, i: number) => {
      s.webServer = { ...s.webServer, port: ports[2 * i], examPort: ports[2 * i + 1] };
      s.url = `http://127.0.0.1:${ports[2 * i]}/`;
    });
    raw.loadBalancer.frontendPort = ports[8];
    raw.master.api.port = ports[9];
  });
  after(async () => {
    await execa('node', [BIN, 'dev', 'down', '--config', configFile], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });

  test('ends with the summary and exit 0; every satellite serves the lesson it names', { timeout: 600_000 }, async () => {
    const result = await execa('node', [BIN, 'run', '--config', configFile], { reject: false, all: true, timeout: 590_000, env: { NO_COLOR: '1' } });
    const output = String(result.all);
    assert.equal(result.exitCode, 0, output.split('\n').slice(-40).join('\n'));
    const lines = output.split('\n');
    const summaryAt = lines.indexOf('summary');
    assert.ok(summaryAt > 0, 'a summary is printed');
    const summary = lines.slice(summaryAt).join('\n');
    const lessonId = /lesson: +(\S+) \(done\)/.exec(summary)?.[1];
    assert.ok(lessonId, summary);
    assert.match(summary, /changed: +60 records, 40 documents/);
    assert.match(summary, /requests: +\d+ through HAProxy, 0 failed/);
    assert.match(summary, /serving: +4 of 4 satellites serve the new lesson/);
    assert.match(summary, /Temporal UI: +http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/prepare-lesson/);
    assert.match(output, /prepareLesson: proof-reading/, 'progress is printed while it runs');
    // The master/slave part: saves through slave-1 show on slave-2, both slaves at the same block.
    assert.match(summary, /master\/slave: +20 saves through slave-1, answered once applied there: p50 [\d.]+ ms/);
    assert.match(summary, /visible elsewhere: on slave-2 after p50 [\d.]+ ms/);
    const marks = [...summary.matchAll(/slave-\d at block (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(marks.length, 2, summary);
    assert.ok(marks[0]! >= 20 && marks[0] === marks[1], `both slaves at the same block: ${marks.join(', ')}`);
    for (const port of ports.filter((_, i) => i < 8 && i % 2 === 0)) {
      assert.equal((await (await fetch(`http://127.0.0.1:${port}/version`)).text()).trim(), lessonId);
    }
  });

  test('dev status says where everything runs; dev up again changes nothing; dev down stops it all', { timeout: 120_000 }, async () => {
    const lessonplan = (...args: string[]) => execa('node', [BIN, ...args, '--config', configFile], { reject: false, env: { NO_COLOR: '1' } });
    const status = await lessonplan('dev', 'status');
    assert.equal(status.exitCode, 0, status.stderr);
    assert.match(status.stdout, /^Temporal +running at 127\.0\.0\.1:\d+ \(namespace default\) \[embedded\]$/m);
    assert.match(status.stdout, /^Temporal UI +http:\/\/127\.0\.0\.1:\d+/m);
    assert.match(status.stdout, /^PostgreSQL +running on 127\.0\.0\.1:\d+ \[embedded\]$/m);
    assert.match(status.stdout, /^ +boy-1 +boys +Apache running +lesson \S+/m);
    const again = await lessonplan('dev', 'up');
    assert.equal(again.exitCode, 0, again.stderr);
    assert.equal(again.stdout, status.stdout, 'a second up finds everything where it was');
    const down = await lessonplan('dev', 'down');
    assert.equal(down.exitCode, 0, down.stderr);
    const after = await lessonplan('dev', 'status');
    assert.equal(after.exitCode, 1, 'not running: exit 1');
    assert.match(after.stdout, /^Temporal +not running/m);
  });
});
