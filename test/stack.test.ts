/**
 * The embedded stack on its own data folder (not the suite's): ports, restarts that
 * keep running workflows, and no process left behind.
 */
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readFile as readFileAsync } from 'node:fs/promises';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../src/config/load';
import { localFixedPorts } from '../src/config/schema';
import { connectClient } from '../src/operator/client';
import { isAlive, logLength, reasonInLog } from '../src/stack/processes';
import { choosePort, PortTakenError } from '../src/stack/ports';
import { readStackState, stackDown, stackStatus, stackUp } from '../src/stack/stack';
import { processesUsing } from './helpers/processes';
import { writeTestConfig } from './helpers/testConfig';

describe('the embedded stack', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-stack-'));
  chmodSync(dir, 0o755);
  after(async () => {
    await stackDown(loadConfig(path.join(dir, 'cluster.yaml'))).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a configured port held by another process is refused clearly, and nothing is left running', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const config = loadConfig(writeTestConfig(dir, (c) => (c.temporal.embedded.port = port)));
      await assert.rejects(stackUp(config), (err: unknown) => {
        assert.ok(err instanceof PortTakenError);
        assert.equal(
          err.message,
          `port ${port} (temporal.embedded.port) is taken by another process; stop that process, or set temporal.embedded.port to 0 to let lessonplan pick a free port`,
        );
        return true;
      });
      assert.deepEqual(processesUsing(dir), []);
      assert.equal(stackStatus(config).postgres.running, false);
    } finally {
      squatter.close();
    }
  });

  test('up is idempotent, a restart keeps running workflows, down leaves no process behind', async () => {
    const config = loadConfig(writeTestConfig(dir));
    const first = await stackUp(config);
    const again = await stackUp(config);
    assert.equal(again.temporal!.pid, first.temporal!.pid, 'a second up reuses the running server');
    assert.equal(again.postgres!.pid, first.postgres!.pid);

    // A workflow with no worker stays running; it must survive the restart.
    let operator = await connectClient(config);
    await operator.client.workflow.start('enrollClass', { taskQueue: 'nobody-polls-this', workflowId: 'survives-restart', args: [] });
    await operator.close();

    await stackDown(config);
    assert.equal(isAlive(first.temporal!.pid), false);
    assert.equal(isAlive(first.postgres!.pid), false);
    assert.deepEqual(processesUsing(dir), []);

    const restarted = await stackUp(config);
    assert.equal(restarted.temporal!.port, first.temporal!.port, 'a free port chosen before is kept across restarts');
    operator = await connectClient(config);
    try {
      const handle = operator.client.workflow.getHandle('survives-restart');
      assert.equal((await handle.describe()).status.name, 'RUNNING');
      await handle.terminate('test done');
    } finally {
      await operator.close();
    }
    await stackDown(config);
    assert.deepEqual(processesUsing(dir), []);
    assert.equal(readStackState(config).temporal!.pid, 0);
  });

  test('a config that asks for the other kind of embedded Temporal server than the one running is refused, and the running one is left alone', async () => {
    const running = loadConfig(writeTestConfig(dir, (c) => (c.temporal.embedded.server = 'dev')));
    const first = await stackUp(running);
    try {
      const other = loadConfig(writeTestConfig(dir, (c) => (c.temporal.embedded.server = 'postgres')));
      await assert.rejects(stackUp(other), (err: Error) => {
        assert.match(err.message, /the embedded server running is the Temporal dev server, but temporal\.embedded\.server is postgres/);
        assert.match(err.message, /lessonplan dev down/);
        return true;
      });
      assert.equal(isAlive(first.temporal!.pid), true, 'the running server is not stopped');
      assert.equal(readStackState(running).temporal!.pid, first.temporal!.pid);
    } finally {
      await stackDown(running);
    }
  });

  test('ports lessonplan picks lie below the ephemeral range, where the dev server cannot pick them for its own listeners', async () => {
    const [low] = (await readFileAsync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).split(/\s+/).map(Number);
    for (let i = 0; i < 50; i++) assert.ok((await choosePort(0, 'temporal.embedded.port')) < low!);
    // A previous port inside the ephemeral range (a stack.json from an older lessonplan) is not reused.
    assert.ok((await choosePort(0, 'temporal.embedded.port', low! + 5)) < low!);
  });

  test('a port lessonplan picks is never one the config gives another part, even when it was the last one used', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-ports-'));
    try {
      const config = loadConfig(writeTestConfig(dir, (raw) => (raw.satellites[0].webServer.port = 24_321)));
      const fixed = localFixedPorts(config);
      assert.ok(fixed.has(24_321), `the satellite's port is among the config's fixed ports: ${[...fixed].join(', ')}`);
      // A stack.json from a run before the satellite took that port: the port is free now, but not ours to take.
      assert.notEqual(await choosePort(0, 'postgres.embedded.port', 24_321, fixed), 24_321);
      for (let i = 0; i < 50; i++) assert.ok(!fixed.has(await choosePort(0, 'postgres.embedded.port', undefined, fixed)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a server that died while starting is explained by its own start's error lines, not by a goroutine dump", () => {
    const log = path.join(dir, 'server.log');
    writeFileSync(log, 'time=... level=ERROR msg="an earlier start failed for another reason"\n');
    const start = logLength(log);
    const dump = Array.from({ length: 40 }, (_, i) => `\t/home/runner/go/pkg/mod/x.go:${i} +0x1`).join('\n');
    appendFileSync(log, `panic: listen tcp 127.0.0.1:41234: bind: address already in use\n\ngoroutine 1 [running]:\n${dump}\n`);
    const reason = reasonInLog(log, start);
    assert.equal(reason, 'panic: listen tcp 127.0.0.1:41234: bind: address already in use');
    // Without telling lines, the end of this start's output.
    writeFileSync(log, 'one\ntwo\n');
    assert.equal(reasonInLog(log, 4), 'two');
  });
});
