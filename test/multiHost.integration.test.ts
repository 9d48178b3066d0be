/**
 * One host per role: the Temporal server (with the cluster's own PostgreSQL), the master
 * and a slave are each a network namespace of this test's own with its own address, its
 * own PostgreSQL and its own lessonplan process, reaching Temporal and each other only over
 * the test's network. One config file describes them all by address. The slave's users
 * save through its endpoint; then the slave is cut off from the network while they save
 * and the master takes saves of its own: the slave's saves fail with an answer (nothing
 * half-saved), and once the link is back the slave catches up, every block once, in order,
 * and a failed save sent again with its key is saved once. Then the Temporal server is
 * restarted (saves go on without it) and the master's worker is restarted (saves meanwhile
 * are refused, then saved once with their key), and slaveSync is the same run throughout.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/load';
import type { ClusterConfig } from '../src/config/schema';
import { openDatabase, type Database } from '../src/db/database';
import { saveOnMaster } from '../src/master/commitblocks';
import { deployModel, migrateReplica } from '../src/model/deploy';
import { connectClient } from '../src/operator/client';
import { startSlaveSync } from '../src/operator/slaveSync';
import { workflowIds } from '../src/shared/names';
import { stopPostgresServer, type PostgresServerState } from '../src/stack/postgresServer';
import { TestHosts } from './helpers/hosts';
import { LIBRARY_V1 } from './helpers/replication';
import { writeTestConfig } from './helpers/testConfig';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/lessonplan.js');
const SAVE_PORT = 18_400;

describe('one host per role: Temporal, the master and a slave in network namespaces of their own', () => {
  const hosts = new TestHosts();
  let dir: string;
  let config: ClusterConfig;
  let file: string;
  const env: Record<string, string> = {
    LESSONPLAN_TEST_SLAVE_CREDENTIAL: randomBytes(24).toString('base64url'),
    LESSONPLAN_TEST_SAVE_TOKEN: randomBytes(24).toString('base64url'),
  };
  const servers: PostgresServerState[] = [];
  const opened: { close(): Promise<void> }[] = [];

  /** A host's own PostgreSQL, started on that host; its password goes into env under `passwordEnv`. */
  async function hostPostgres(name: string, passwordEnv: string): Promise<void> {
    const host = hosts.host(name);
    const dataDir = path.join(dir, 'hosts', name);
    mkdirSync(dataDir, { recursive: true });
    const started = await hosts.run(
      name,
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'test/helpers/hostPostgres.ts'), dataDir, host.ip, `${hosts.gateway}/24`],
      {
        cwd: ROOT,
      },
    );
    const state = JSON.parse(String(started.stdout).trim().split('\n').at(-1)!) as PostgresServerState;
    servers.push(state);
    env[passwordEnv] = readFileSync(state.passwordFile, 'utf8').trim();
  }

  /** A lessonplan command on a host, running until the test ends; its output is kept for the assertions' messages. */
  function onHost(name: string, args: string[]) {
    const child = hosts.start(name, process.execPath, [BIN, '--config', file, ...args], { cwd: ROOT, env, all: true });
    const said = { text: '' };
    child.all!.on('data', (chunk: Buffer) => (said.text = (said.text + chunk.toString()).slice(-20_000)));
    return { child, said };
  }

  /** A save by the slave host's own application, to its endpoint on that host's loopback. */
  async function saveOnSlaveHost(id: number, key: string, checksum: string): Promise<{ status: number; body: string }> {
    const body = JSON.stringify({
      modelChecksum: checksum,
      idempotencyKey: key,
      changes: [{ class: 'book', op: 'upsert', values: { id, title: `book ${id}`, copies: 1 } }],
    });
    const result = await hosts.run(
      'slave',
      'curl',
      [
        '-s',
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        '--max-time',
        '20',
        '-H',
        'content-type: application/json',
        '-H',
        `authorization: Bearer ${env.LESSONPLAN_TEST_SAVE_TOKEN}`,
        '--data-binary',
        body,
        `http://127.0.0.1:${SAVE_PORT}/v1/saves`,
      ],
      { reject: false },
    );
    const lines = String(result.stdout).split('\n');
    return { status: Number(lines.at(-1)), body: lines.slice(0, -1).join('\n') };
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-multihost-'));
    chmodSync(dir, 0o755);
    await hosts.create();
    const temporalHost = await hosts.add('temporal');
    const masterHost = await hosts.add('master');
    const slaveHost = await hosts.add('slave');
    await hostPostgres('temporal', 'LESSONPLAN_TEST_PG_CLUSTER');
    await hostPostgres('master', 'LESSONPLAN_TEST_PG_MASTER');
    await hostPostgres('slave', 'LESSONPLAN_TEST_PG_SLAVE');
    file = writeTestConfig(dir, (raw) => {
      raw.temporal.address = `${temporalHost.ip}:7233`;
      raw.postgres.url = `postgres://lessonplan@${temporalHost.ip}:5432`;
      raw.postgres.passwordEnv = 'LESSONPLAN_TEST_PG_CLUSTER';
      raw.master.database = {
        name: 'lessonplan_master',
        url: `postgres://lessonplan@${masterHost.ip}:5432`,
        passwordEnv: 'LESSONPLAN_TEST_PG_MASTER',
      };
      raw.master.api = { host: masterHost.ip, port: 18_300, plainHttp: 'trusted network' };
      raw.slaves = [
        {
          name: 'slave-1',
          database: { name: 'lessonplan_slave_1', url: `postgres://lessonplan@${slaveHost.ip}:5432`, passwordEnv: 'LESSONPLAN_TEST_PG_SLAVE' },
          credentialEnv: 'LESSONPLAN_TEST_SLAVE_CREDENTIAL',
          saveEndpoint: { port: SAVE_PORT, tokenEnv: 'LESSONPLAN_TEST_SAVE_TOKEN' },
        },
      ];
    });
    Object.assign(process.env, env);
    config = loadConfig(file);
  });

  after(async () => {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    await hosts.destroy();
    for (const state of servers) await stopPostgresServer(state).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test(
    'the slave follows the master across the network, survives being cut off while its users save, and catches up',
    { timeout: 600_000 },
    async () => {
      const temporal = onHost('temporal', ['temporal', 'serve', '--bind', hosts.host('temporal').ip]);
      for (const until = Date.now() + 180_000; !/Temporal \S+ serves/.test(temporal.said.text);) {
        assert.ok(Date.now() < until && temporal.child.exitCode === null, `temporal serve did not come up:\n${temporal.said.text}`);
        await new Promise((r) => setTimeout(r, 250));
      }

      // The replica databases, created on their own hosts' servers and migrated from here (the operator's machine).
      const master: Database = openDatabase(
        `postgres://lessonplan:${encodeURIComponent(env.LESSONPLAN_TEST_PG_MASTER!)}@${hosts.host('master').ip}:5432/postgres`,
        { max: 1 },
      );
      await master.query('CREATE DATABASE lessonplan_master');
      await master.close();
      const slaveServer: Database = openDatabase(
        `postgres://lessonplan:${encodeURIComponent(env.LESSONPLAN_TEST_PG_SLAVE!)}@${hosts.host('slave').ip}:5432/postgres`,
        { max: 1 },
      );
      await slaveServer.query('CREATE DATABASE lessonplan_slave_1');
      await slaveServer.close();
      const masterDb = openDatabase(
        `postgres://lessonplan:${encodeURIComponent(env.LESSONPLAN_TEST_PG_MASTER!)}@${hosts.host('master').ip}:5432/lessonplan_master`,
        { max: 2 },
      );
      opened.push(masterDb);
      const slaveDb = openDatabase(
        `postgres://lessonplan:${encodeURIComponent(env.LESSONPLAN_TEST_PG_SLAVE!)}@${hosts.host('slave').ip}:5432/lessonplan_slave_1`,
        { max: 2 },
      );
      opened.push(slaveDb);
      for (const db of [masterDb, slaveDb]) await migrateReplica(db);
      const { checksum } = await deployModel(masterDb, LIBRARY_V1);

      const orchestration = onHost('temporal', ['worker', 'orchestration']);
      const masterWorker = onHost('master', ['worker', 'master']);
      const slaveWorker = onHost('slave', ['worker', 'slave', '--name', 'slave-1']);
      const operator = await connectClient(config);
      opened.push(operator);
      await startSlaveSync(operator.client, config, 'slave-1');
      const logs = () =>
        `\norchestration:\n${orchestration.said.text.slice(-3000)}\nmaster:\n${masterWorker.said.text.slice(-3000)}\nslave:\n${slaveWorker.said.text.slice(-3000)}`;

      const onSlave = async (id: number, ms: number) => {
        for (const until = Date.now() + ms; Date.now() < until;) {
          const { rows } = await slaveDb.query<{ found: boolean }>("SELECT to_regclass('book') IS NOT NULL AS found");
          if (rows[0]?.found && ((await slaveDb.query('SELECT 1 FROM book WHERE id = $1', [id])).rowCount ?? 0) > 0) return true;
          await new Promise((r) => setTimeout(r, 200));
        }
        return false;
      };

      // A save by the slave host's application: forwarded to the master over the network, answered once applied on the slave.
      let first: { status: number; body: string } | undefined;
      for (const until = Date.now() + 90_000; Date.now() < until;) {
        first = await saveOnSlaveHost(1, 'multihost-1', checksum);
        if (first.status === 200) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(first?.status, 200, `the first save through the slave: ${first?.body}${logs()}`);
      assert.ok(await onSlave(1, 10_000), 'answered only once applied on the slave');

      // The slave host is cut off: its users' saves get an answer that says so; the master goes on with saves of its own.
      await hosts.cut('slave');
      const cut = await saveOnSlaveHost(2, 'multihost-2', checksum);
      assert.ok(
        [503, 504].includes(cut.status),
        `a save while the slave is cut off is answered as not saved (503/504), not left hanging: ${cut.status} ${cut.body}`,
      );
      assert.match(cut.body, /same idempotency key/, 'the answer says that saving again with the key is safe');
      for (const id of [3, 4]) {
        await saveOnMaster(masterDb, {
          modelChecksum: checksum,
          origin: 'master',
          idempotencyKey: `multihost-${id}`,
          changes: [{ class: 'book', op: 'upsert', values: { id, title: `book ${id}`, copies: 1 } }],
        });
      }
      await hosts.heal('slave');

      // Back on the network: the saves made meanwhile arrive; the failed save, sent again with its key, is saved once.
      assert.ok(await onSlave(4, 120_000), `the blocks made while the slave was cut off arrive${logs()}`);
      let again: { status: number; body: string } | undefined;
      for (const until = Date.now() + 60_000; Date.now() < until;) {
        again = await saveOnSlaveHost(2, 'multihost-2', checksum);
        if (again.status === 200) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(again?.status, 200, `the save sent again after the cut: ${again?.body}${logs()}`);
      const keys = await masterDb.query<{ n: string }>("SELECT count(*) AS n FROM lp_commitblocks WHERE idempotency_key = 'multihost-2'");
      assert.equal(Number(keys.rows[0]!.n), 1, 'the save sent twice is one block on the master');
      const blocks = await slaveDb.query<{ seq: string }>('SELECT seq FROM lp_commitblocks ORDER BY seq');
      const masterBlocks = await masterDb.query<{ seq: string }>('SELECT seq FROM lp_commitblocks ORDER BY seq');
      assert.deepEqual(
        blocks.rows.map((r) => Number(r.seq)),
        masterBlocks.rows.map((r) => Number(r.seq)),
        'the slave holds every block of the master once, in order',
      );
      const firstRun = (await operator.client.workflow.getHandle(workflowIds.slaveSync('slave-1')).describe()).runId;

      // The Temporal server goes away: a save is data, not a decision, and does not wait for Temporal.
      temporal.child.kill('SIGTERM');
      await temporal.child;
      const withoutTemporal = await saveOnSlaveHost(5, 'multihost-5', checksum);
      assert.equal(withoutTemporal.status, 200, `a save while the Temporal server is away: ${withoutTemporal.body}${logs()}`);
      const back = onHost('temporal', ['temporal', 'serve', '--bind', hosts.host('temporal').ip]);
      for (const until = Date.now() + 180_000; !/Temporal \S+ serves/.test(back.said.text);) {
        assert.ok(Date.now() < until && back.child.exitCode === null, `temporal serve did not come back:\n${back.said.text}`);
        await new Promise((r) => setTimeout(r, 250));
      }

      // The master's worker restarts: saves meanwhile are answered as not saved; after it, the same key saves once.
      masterWorker.child.kill('SIGTERM');
      await masterWorker.child;
      const withoutMaster = await saveOnSlaveHost(6, 'multihost-6', checksum);
      assert.ok([503, 504].includes(withoutMaster.status), `a save while the master is down: ${withoutMaster.status} ${withoutMaster.body}`);
      const masterAgain = onHost('master', ['worker', 'master']);
      let afterRestart: { status: number; body: string } | undefined;
      for (const until = Date.now() + 90_000; Date.now() < until;) {
        afterRestart = await saveOnSlaveHost(6, 'multihost-6', checksum);
        if (afterRestart.status === 200) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(
        afterRestart?.status,
        200,
        `the save sent again once the master is back: ${afterRestart?.body}\n${masterAgain.said.text.slice(-3000)}`,
      );
      const six = await masterDb.query<{ n: string }>("SELECT count(*) AS n FROM lp_commitblocks WHERE idempotency_key = 'multihost-6'");
      assert.equal(Number(six.rows[0]!.n), 1, 'the save sent twice around the restart is one block');
      assert.ok(await onSlave(6, 30_000));

      const description = await operator.client.workflow.getHandle(workflowIds.slaveSync('slave-1')).describe();
      assert.equal(description.status.name, 'RUNNING');
      assert.equal(description.runId, firstRun, 'the same run of slaveSync throughout');
    },
  );
});
