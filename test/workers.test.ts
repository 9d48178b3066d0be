/**
 * Worker processes as operators run them: each role's entry point starts, polls its
 * task queue, and stops cleanly (exit 0) on SIGTERM or SIGINT.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { testStack } from './helpers/stack';

const ROOT = path.resolve(import.meta.dirname, '..');

/** Starts a worker process and resolves once it logs that it polls, with its task queues. */
async function startWorkerProcess(args: string[]) {
  const child = execa('node', ['--import', 'tsx', ...args], {
    cwd: ROOT,
    reject: false,
    all: true,
    env: { LESSONPLAN_LOG_FORMAT: 'json', LESSONPLAN_LOG_LEVEL: 'info' },
  });
  const polling = await new Promise<string[]>((resolve, reject) => {
    let seen = '';
    child.all!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const line = seen.split('\n').find((l) => l.includes('"workers polling"'));
      if (line) resolve(JSON.parse(line).taskQueues);
    });
    child.then((r) => reject(new Error(`worker exited with ${r.exitCode} before polling:\n${r.all}`)), reject);
  });
  return { child, polling };
}

describe('worker entry points', async () => {
  const config = await testStack();
  const configFile = process.env.LESSONPLAN_TEST_CONFIG ?? '';

  for (const [file, args, queues, signal] of [
    ['src/workers/orchestration.ts', [], ['lessonplan'], 'SIGTERM'],
    ['src/workers/reference.ts', [], ['reference'], 'SIGINT'],
    ['src/workers/satellite.ts', ['--name', 'girl-2'], ['satellite-girl-2'], 'SIGTERM'],
    ['src/workers/slave.ts', ['--name', 'slave-1'], ['slave-slave-1'], 'SIGTERM'],
    ['src/workers/master.ts', [], ['master'], 'SIGTERM'],
  ] as const) {
    test(`${path.basename(file)} polls ${queues.join(', ')} and stops cleanly on ${signal}`, { skip: !configFile && 'needs npm test' }, async () => {
      const { child, polling } = await startWorkerProcess([file, '--config', configFile, ...args]);
      assert.deepEqual(polling, queues);
      child.kill(signal);
      const result = await child;
      assert.equal(result.exitCode, 0, result.all);
      assert.match(result.all ?? '', /"workers stopped"/);
    });
  }

  test('the all-in-one worker serves every role of the config', { skip: !configFile && 'needs npm test' }, async () => {
    const { child, polling } = await startWorkerProcess(['bin/lessonplan.js', '--config', configFile, 'worker', 'all-in-one']);
    assert.deepEqual(polling, [
      'lessonplan',
      'reference',
      ...config.satellites.map((s) => `satellite-${s.name}`),
      'master',
      ...config.slaves.map((s) => `slave-${s.name}`),
    ]);
    child.kill('SIGTERM');
    assert.equal((await child).exitCode, 0);
  });

  test('a satellite worker without a known name refuses to start, with one clear line', { skip: !configFile && 'needs npm test' }, async () => {
    const result = await execa('node', ['--import', 'tsx', 'src/workers/satellite.ts', '--config', configFile, '--name', 'nobody'], {
      cwd: ROOT,
      reject: false,
      env: { LESSONPLAN_LOG_FORMAT: 'json' },
    });
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /no satellite named \\"nobody\\" in the config; configured: boy-1, boy-2, girl-1, girl-2/);
  });
});
