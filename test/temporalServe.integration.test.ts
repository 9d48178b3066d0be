/**
 * `lessonplan temporal serve` and `lessonplan temporal ui`, the foreground commands a host
 * of its own runs (docker-compose.yml's temporal and temporal-ui services): the Temporal
 * server on a PostgreSQL server the config gives by URL (here a PostgreSQL of this test's
 * own), its schemas applied, its namespace and search attributes registered, a workflow
 * list answered, the UI served for it, and both ending cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { searchAttributes } from '../src/shared/names';
import { freeStablePort } from '../src/stack/ports';
import { startPostgresServer, stopPostgresServer, type PostgresServerState } from '../src/stack/postgresServer';
import { writeTestConfig } from './helpers/testConfig';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('lessonplan temporal serve and temporal ui', () => {
  let dir: string;
  let postgres: PostgresServerState;
  let file: string;
  let env: Record<string, string>;
  let address: string;
  const running: ResultPromise[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-temporal-serve-'));
    chmodSync(dir, 0o755);
    postgres = await startPostgresServer({ dataDir: path.join(dir, 'pg'), port: 0 });
    const port = await freeStablePort(new Set([postgres.port]));
    address = `127.0.0.1:${port}`;
    file = writeTestConfig(dir, (raw) => {
      raw.temporal.address = address;
      raw.postgres.url = `postgres://${postgres.user}@127.0.0.1:${postgres.port}`;
      raw.postgres.passwordEnv = 'LESSONPLAN_TEST_PG_PASSWORD';
    });
    env = { LESSONPLAN_TEST_PG_PASSWORD: readFileSync(postgres.passwordFile, 'utf8').trim() };
  });

  after(async () => {
    // SIGTERM first: temporal serve passes it on to its server, which must let go of PostgreSQL before it stops.
    for (const p of running) {
      p.kill('SIGTERM');
      await Promise.race([p, new Promise((r) => setTimeout(r, 20_000))]);
      p.kill('SIGKILL');
    }
    await stopPostgresServer(postgres);
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves Temporal on the given PostgreSQL with the namespace and search attributes, and the UI for it', { timeout: 240_000 }, async () => {
    const serve = execa('node', [BIN, '--config', file, 'temporal', 'serve', '--bind', '127.0.0.1'], { env, reject: false, all: true });
    running.push(serve);
    let said = '';
    serve.all!.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const until = Date.now() + 180_000;
    while (!/Temporal \S+ serves/.test(said)) {
      assert.ok(Date.now() < until, `temporal serve did not say it serves within 3 minutes:\n${said}`);
      assert.equal(serve.exitCode, null, `temporal serve ended:\n${said}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(said, /created database temporal\b/, 'the databases are created on the given server');
    assert.match(said, /namespace default (registered|there), search attributes added: /);

    const connection = await Connection.connect({ address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const key of Object.values(searchAttributes)) assert.ok(key.name in (customAttributes ?? {}), `${key.name} registered`);
      const listed = await connection.workflowService.listWorkflowExecutions({
        namespace: 'default',
        query: `${searchAttributes.cluster.name} = 'test'`,
      });
      assert.deepEqual(listed.executions, [], 'visibility on PostgreSQL answers a query on a lessonplan search attribute');
    } finally {
      await connection.close();
    }

    const uiPort = await freeStablePort(new Set([postgres.port, Number(address.split(':')[1])]));
    const ui = execa('node', [BIN, '--config', file, 'temporal', 'ui', '--port', String(uiPort)], { env, reject: false, all: true });
    running.push(ui);
    let page: Response | undefined;
    for (const stop = Date.now() + 30_000; Date.now() < stop && !page;) {
      page = await fetch(`http://127.0.0.1:${uiPort}/`).catch(() => undefined);
      if (!page) await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(page?.status, 200, 'the UI answers');
    assert.match(await page!.text(), /<html/i);
    const settings = await fetch(`http://127.0.0.1:${uiPort}/api/v1/settings`).then((r) => r.json() as Promise<{ DefaultNamespace?: string }>);
    assert.equal(settings.DefaultNamespace, 'default');

    ui.kill('SIGTERM');
    serve.kill('SIGTERM');
    const [uiEnd, serveEnd] = await Promise.all([ui, serve]);
    assert.equal(serveEnd.exitCode, 0, `temporal serve ends cleanly on SIGTERM:\n${serveEnd.all?.slice(-2000)}`);
    assert.equal(uiEnd.exitCode, 0, `temporal ui ends cleanly on SIGTERM:\n${uiEnd.all?.slice(-2000)}`);
  });
});
