/**
 * Stopping a satellite's Apache when the stop cannot be confirmed: its own process
 * still runs (a retry may help), or another program took its port (no retry helps:
 * the activity fails at once and says what to do). Real Apache instances on ports of
 * their own, a slow download to keep one busy, a plain Node server as the other program.
 */
import assert from 'node:assert/strict';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, ftruncateSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { execa, type ResultPromise } from 'execa';
import { apachePid, startApache, stopApache, WebServerError, type ApacheSatellite } from '../src/activities/satellite/apache';
import { createSatelliteActivities } from '../src/activities/satellite';
import { freeStablePort, isPortFree } from '../src/stack/ports';
import { isAlive } from '../src/stack/processes';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stopping Apache when the stop cannot be confirmed', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-apache-stop-'));
  // Apache's children run as www-data when we are root: they must reach the files.
  chmodSync(dir, 0o755);
  const ports = new Set<number>();
  const satellites: ApacheSatellite[] = [];
  const others: ResultPromise[] = [];
  after(async () => {
    for (const other of others) other.kill('SIGKILL');
    for (const s of satellites) {
      const pid = apachePid(s, 'serve');
      if (pid) process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** A satellite of its own, serving a big (sparse) file that a slow download can hold on to. */
  async function satellite(name: string): Promise<ApacheSatellite> {
    const dataDir = path.join(dir, name);
    mkdirSync(path.join(dataDir, 'lessons/big'), { recursive: true });
    const big = openSync(path.join(dataDir, 'lessons/big/big.bin'), 'w');
    ftruncateSync(big, 512 * 1024 * 1024);
    closeSync(big);
    symlinkSync('lessons/big', path.join(dataDir, 'current'));
    const port = await freeStablePort(ports);
    const s = {
      name,
      group: 'boys',
      host: 'localhost',
      dataDir,
      url: `http://127.0.0.1:${port}/`,
      webServer: { kind: 'apache', port, examPort: await freeStablePort(ports) },
    } as ApacheSatellite;
    satellites.push(s);
    assert.equal(await startApache(s, 'serve'), 'started');
    return s;
  }

  /** A download nobody reads: Apache's worker stays busy with it, so its process stays after graceful-stop. */
  async function slowDownload(port: number): Promise<net.Socket> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write('GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await new Promise((resolve) => socket.once('data', resolve));
    socket.pause();
    return socket;
  }

  /** Another program: a plain Node server that binds the port as soon as it is free. Resolves to its pid once it listens. */
  async function otherProgram(port: number): Promise<{ pid: number }> {
    const script = `const net = require('net');
      const bind = () => { const s = net.createServer(); s.once('error', () => setTimeout(bind, 5)); s.listen(${port}, '127.0.0.1', () => console.log('listening')); };
      bind();`;
    const child = execa('node', ['-e', script], { reject: false });
    others.push(child);
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    // Not the child itself: an execa child is a promise, and an async function would wait for it to end.
    return { pid: child.pid! };
  }

  test('our Apache still running after the deadline is said so, with its pid, and may be retried', async () => {
    const s = await satellite('busy-1');
    const pid = apachePid(s, 'serve')!;
    const download = await slowDownload(s.webServer.port);
    try {
      await assert.rejects(stopApache(s, 'serve', 2_000), (err: unknown) => {
        assert.ok(err instanceof WebServerError, `not a WebServerError: ${String(err)}`);
        assert.ok(!(err instanceof ApplicationFailure && err.nonRetryable), 'a retry may still see it stop');
        assert.match(err.message, new RegExp(`^Apache \\(serve\\) of busy-1 still runs \\(pid ${pid}`));
        return true;
      });
    } finally {
      download.destroy();
    }
    while (isAlive(pid)) await sleep(100);
  });

  test('another program taking the port while Apache stops fails the stop at once, non-retryable, naming that program', async () => {
    const s = await satellite('boy-1');
    const apache = apachePid(s, 'serve')!;
    const download = await slowDownload(s.webServer.port);
    const stopping = createSatelliteActivities({ satellite: s }).stopWebServer();
    stopping.catch(() => undefined);
    // Apache closes its port first and finishes the download; the other program binds meanwhile.
    const other = await otherProgram(s.webServer.port);
    download.destroy();
    const since = Date.now();
    await assert.rejects(stopping, (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure, `not an ApplicationFailure: ${String(err)}`);
      assert.equal(err.nonRetryable, true);
      assert.equal(err.type, 'PortHeldByAnotherProcess');
      assert.match(err.message, new RegExp(`^boy-1's Apache \\(serve\\) has stopped, but port ${s.webServer.port} is held by another process`));
      assert.match(err.message, new RegExp(`pid ${other.pid} \\(node -e`));
      assert.match(err.message, /stop that process or move it off the port/);
      return true;
    });
    assert.ok(Date.now() - since < 10_000, `the stop took ${Date.now() - since} ms to give up`);
    assert.equal(isAlive(apache), false);
  });

  test('a port taken while Apache was down fails the stop at once too', async () => {
    const s = await satellite('boy-2');
    assert.equal(await stopApache(s, 'serve'), 'stopped');
    assert.ok(await isPortFree(s.webServer.port));
    const other = await otherProgram(s.webServer.port);
    const since = Date.now();
    await assert.rejects(stopApache(s, 'serve'), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure, `not an ApplicationFailure: ${String(err)}`);
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, new RegExp(`pid ${other.pid} \\(node -e`));
      return true;
    });
    assert.ok(Date.now() - since < 5_000, `the stop took ${Date.now() - since} ms to give up`);
  });
});
