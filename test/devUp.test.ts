/**
 * `lessonplan dev up` that cannot finish leaves nothing running: what it can check
 * (folders it must create, fixed ports it must bind) it checks before starting
 * anything, and what it started before a part failed it stops again. Each case runs
 * the real command on a config of its own, in its own folder, on ports of its own.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { execa } from 'execa';
import { clusterDown } from '../src/cluster/localCluster';
import { loadConfig } from '../src/config/load';
import type { ClusterConfig } from '../src/config/schema';
import { freeStablePort, isPortFree } from '../src/stack/ports';
import { readStackState, stackDown } from '../src/stack/stack';
import { processesUsing } from './helpers/processes';
import { writeTestConfig } from './helpers/testConfig';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('dev up, all or nothing', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A folder and a config of the demo's shape whose satellites and HAProxy use free ports, not the demo's. */
  async function setUp(name: string, edit: (raw: Record<string, any>, dir: string) => void): Promise<{ dir: string; config: ClusterConfig }> {
    const dir = mkdtempSync(path.join(os.tmpdir(), `lessonplan-devup-${name}-`));
    chmodSync(dir, 0o755);
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < 9; i++) ports.push(await freeStablePort(taken));
    const file = writeTestConfig(dir, (raw) => {
      raw.satellites.forEach((s: Record<string, any>, i: number) => {
        s.webServer = { ...s.webServer, port: ports[2 * i], examPort: ports[2 * i + 1] };
        s.url = `http://127.0.0.1:${ports[2 * i]}/`;
      });
      raw.loadBalancer.frontendPort = ports[8];
      edit(raw, dir);
    });
    const config = loadConfig(file);
    cleanups.push(async () => {
      // Whatever a failed up left running (the bug under test) goes, so that no test leaks processes.
      await clusterDown(config).catch(() => undefined);
      await stackDown(config).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });
    return { dir, config };
  }

  const lessonplan = (dir: string, ...args: string[]) =>
    execa('node', [BIN, '--config', path.join(dir, 'cluster.yaml'), ...args], { reject: false, all: true });
  const devUp = (dir: string) => lessonplan(dir, 'dev', 'up');

  /** Nothing of this config runs any more, and none of its ports is bound. */
  async function assertNothingLeft(dir: string, config: ClusterConfig): Promise<void> {
    assert.deepEqual(processesUsing(dir), [], 'processes that dev up started still run');
    const state = readStackState(config);
    const ports = [
      ...config.satellites.map((s) => s.webServer.port),
      ...(config.loadBalancer.kind === 'haproxy' ? [config.loadBalancer.frontendPort] : []),
      ...(state.temporal ? [state.temporal.port, ...(state.temporal.uiPort ? [state.temporal.uiPort] : [])] : []),
      ...(state.postgres ? [state.postgres.port] : []),
    ];
    for (const port of ports) assert.ok(await isPortFree(port), `port ${port} is still bound`);
  }

  test('a satellite dataDir that cannot be created: refused before anything starts, naming the satellite and its dataDir', async () => {
    const { dir, config } = await setUp('datadir', (raw) => (raw.satellites[3].dataDir = './not-a-folder/girl-2'));
    writeFileSync(path.join(dir, 'not-a-folder'), 'a regular file where a folder should be\n');
    const result = await devUp(dir);
    assert.equal(result.exitCode, 1, result.all);
    const dataDir = path.join(dir, 'not-a-folder/girl-2');
    assert.match(result.stderr, new RegExp(`satellite girl-2: dataDir ${dataDir} cannot be created: ${path.join(dir, 'not-a-folder')} is a file`));
    assert.match(result.stderr, /nothing was started/);
    await assertNothingLeft(dir, config);
    assert.equal(existsSync(path.join(dir, 'stack.json')), false, 'the stack was started before the check');
  });

  test("a fixed port another program holds: refused before anything starts, naming the port, its setting and the program's pid", async () => {
    const other = net.createServer();
    const { dir, config } = await setUp('port', () => undefined);
    const port = config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0;
    await new Promise<void>((resolve) => other.listen(port, '127.0.0.1', resolve));
    try {
      const result = await devUp(dir);
      assert.equal(result.exitCode, 1, result.all);
      assert.match(result.stderr, new RegExp(`port ${port} \\(loadBalancer.frontendPort\\) is taken by pid ${process.pid} `));
      assert.match(result.stderr, /nothing was started/);
      assert.deepEqual(processesUsing(dir), []);
      assert.equal(existsSync(path.join(dir, 'stack.json')), false, 'the stack was started before the check');
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
    await assertNothingLeft(dir, config);
  });

  test('a part that fails while starting: everything dev up started before it is stopped again', { timeout: 180_000 }, async () => {
    // girl-2's web server cannot start: nothing a check beforehand could have told.
    const { dir, config } = await setUp('start', (raw) => (raw.satellites[3].webServer.start = ['sh', '-c', 'echo no web server here >&2; exit 3']));
    const result = await devUp(dir);
    assert.equal(result.exitCode, 1, result.all);
    assert.match(result.stderr, /Apache \(serve\) of girl-2 did not start: sh exited 3: no web server here/);
    await assertNothingLeft(dir, config);
    assert.ok(existsSync(path.join(dir, 'stack.json')), 'the stack had been started');
    const state = readStackState(config);
    assert.equal(state.temporal?.pid, 0, 'stack.json says the Temporal dev server is stopped');
    assert.equal(state.postgres?.pid, 0, 'stack.json says PostgreSQL is stopped');
  });

  test('the checks let a second up over its own running stack and cluster through; down then leaves nothing', { timeout: 180_000 }, async () => {
    const { dir, config } = await setUp('again', () => undefined);
    const first = await devUp(dir);
    assert.equal(first.exitCode, 0, first.all);
    const again = await devUp(dir);
    assert.equal(again.exitCode, 0, again.all);
    assert.match(again.stdout, /girl-2 +girls +Apache running/);
    const down = await lessonplan(dir, 'dev', 'down');
    assert.equal(down.exitCode, 0, down.all);
    await assertNothingLeft(dir, config);
  });
});
