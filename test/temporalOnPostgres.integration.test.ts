/**
 * The Temporal server as production runs it (src/stack/temporalOnPostgres.ts): built from
 * its Go module, its history and visibility on the embedded PostgreSQL. This file starts a
 * stack of its own with `temporal.embedded.server: postgres`, runs a slave's slaveSync on
 * it, and restarts the Temporal server while the slave follows: the workflow is the same
 * run afterwards, kept in PostgreSQL, and the blocks made meanwhile arrive.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import pg from 'pg';
import { loadConfig } from '../src/config/load';
import type { ClusterConfig } from '../src/config/schema';
import { openDatabase, type Database } from '../src/db/database';
import { forgetLessonRun, lessonRunsOn, recordLessonRun } from '../src/db/lessonRuns';
import { migrateOperational } from '../src/db/migrate';
import type { FiledLesson } from '../src/shared/lesson';
import { createLogger } from '../src/logging';
import { saveOnMaster } from '../src/master/commitblocks';
import { deployModel, migrateReplica } from '../src/model/deploy';
import { connectClient } from '../src/operator/client';
import { startHoldLesson, startRollBack } from '../src/operator/rollout';
import { startSlaveSync } from '../src/operator/slaveSync';
import { searchAttributes, workflowIds } from '../src/shared/names';
import { databaseUrl } from '../src/stack/endpoints';
import { embeddedPostgresUrl } from '../src/stack/postgresServer';
import { freeStablePort } from '../src/stack/ports';
import { readStackState, stackDown, stackUp } from '../src/stack/stack';
import { TEMPORAL_DATABASES } from '../src/stack/temporalOnPostgres';
import { stopTemporalServer } from '../src/stack/temporalServer';
import { temporalServerTools } from '../src/stack/toolPaths';
import { startWorkers } from '../src/workers/runWorkers';
import { LIBRARY_V1 } from './helpers/replication';
import { writeTestConfig } from './helpers/testConfig';

const log = createLogger('test-temporal-pg', { level: 'warn' });
const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('the Temporal server on PostgreSQL (built from go.temporal.io/server)', () => {
  let dir: string;
  let config: ClusterConfig;
  let workers: Awaited<ReturnType<typeof startWorkers>> | undefined;
  const opened: { close(): Promise<void> }[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-temporal-pg-'));
    chmodSync(dir, 0o755);
    const apiPort = await freeStablePort();
    config = loadConfig(
      writeTestConfig(dir, (raw) => {
        raw.temporal.embedded = { server: 'postgres', port: 0 };
        raw.master.api.port = apiPort;
        raw.slaves = raw.slaves.slice(0, 1);
      }),
    );
    await stackUp(config, log);
  });

  after(async () => {
    workers?.shutdown();
    await workers?.done;
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    await stackDown(config, log);
    rmSync(dir, { recursive: true, force: true });
  });

  test(
    "registers the namespace and lessonplan's search attributes, and keeps a slave's slaveSync across a restart of the server",
    { timeout: 240_000 },
    async () => {
      const state = readStackState(config);
      assert.equal(state.temporal?.kind, 'postgres');
      const operator = await connectClient(config);
      opened.push(operator);
      const { customAttributes } = await operator.client.connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace });
      for (const key of Object.values(searchAttributes)) assert.ok(key.name in (customAttributes ?? {}), `search attribute ${key.name} registered`);

      const master: Database = openDatabase(databaseUrl(config, config.master!.database), { max: 2 });
      opened.push(master);
      const slave = config.slaves[0]!;
      const slaveDb: Database = openDatabase(databaseUrl(config, slave.database), { max: 2 });
      opened.push(slaveDb);
      for (const db of [master, slaveDb]) await migrateReplica(db);
      const { checksum } = await deployModel(master, LIBRARY_V1);
      workers = await startWorkers(config, [{ role: 'orchestration' }, { role: 'master' }, { role: 'slave', name: slave.name }], log);
      const handle = await startSlaveSync(operator.client, config, slave.name);
      const firstRun = (await handle.describe()).runId;

      const save = (id: number) =>
        saveOnMaster(master, {
          modelChecksum: checksum,
          origin: 'master',
          idempotencyKey: `temporal-pg-${id}`,
          changes: [{ class: 'book', op: 'upsert', values: { id, title: `book ${id}`, copies: 1 } }],
        });
      const onSlave = async (id: number, ms: number) => {
        const until = Date.now() + ms;
        while (Date.now() < until) {
          // The slave creates the book table when it evolves to the master's model, with its first block.
          const { rows } = await slaveDb.query<{ found: boolean }>(
            "SELECT to_regclass('book') IS NOT NULL AND EXISTS (SELECT 1 FROM lp_commitblocks WHERE seq >= $1) AS found",
            [id],
          );
          if (rows[0]?.found && ((await slaveDb.query('SELECT 1 FROM book WHERE id = $1', [id])).rowCount ?? 0) > 0) return true;
          await new Promise((r) => setTimeout(r, 100));
        }
        return false;
      };
      await save(1);
      assert.ok(await onSlave(1, 60_000), 'block 1 applied on the slave');

      // The history is PostgreSQL's, not a file's: the run is in the server's own tables.
      const temporalDb = new pg.Client({ connectionString: embeddedPostgresUrl(state.postgres!, TEMPORAL_DATABASES.history) });
      await temporalDb.connect();
      opened.push({ close: () => temporalDb.end() });
      const current = await temporalDb.query('SELECT run_id FROM current_executions WHERE workflow_id = $1', [workflowIds.slaveSync(slave.name)]);
      assert.equal(current.rowCount, 1, "slaveSync's run is in the temporal database");

      // The server goes away and comes back; the master takes saves meanwhile.
      await stopTemporalServer(state.temporal!);
      await save(2);
      await stackUp(config, log);
      await save(3);
      assert.ok(await onSlave(3, 90_000), 'blocks made while the server was away and after it came back are applied');
      const description = await operator.client.workflow.getHandle(workflowIds.slaveSync(slave.name)).describe();
      assert.equal(description.status.name, 'RUNNING');
      assert.equal(description.runId, firstRun, 'the same run of slaveSync, kept in PostgreSQL across the restart');
      const blocks = await slaveDb.query<{ seq: string }>('SELECT seq FROM lp_commitblocks ORDER BY seq');
      assert.deepEqual(
        blocks.rows.map((r) => Number(r.seq)),
        [1, 2, 3],
        'each block once, in order',
      );
    },
  );

  test(
    'sees a rollout that started a moment ago while visibility lags: a rollback is refused, by workflow id and the operational database',
    { timeout: 120_000 },
    async () => {
      const state = readStackState(config);
      const operator = await connectClient(config);
      opened.push(operator);
      const ops: Database = openDatabase(databaseUrl(config, config.operationalDatabase), { max: 2 });
      opened.push(ops);
      await migrateOperational(ops);

      // Visibility that lags, for real: its table is locked against writes, so the server's
      // visibility queue waits while every list reads what was there before.
      const visibility = new pg.Client({ connectionString: embeddedPostgresUrl(state.postgres!, TEMPORAL_DATABASES.visibility) });
      await visibility.connect();
      opened.push({ close: () => visibility.end() });
      await visibility.query('BEGIN');
      await visibility.query('LOCK TABLE executions_visibility IN EXCLUSIVE MODE');
      let locked = true;
      const unlock = async () => {
        if (locked) await visibility.query('ROLLBACK');
        locked = false;
      };
      opened.push({ close: unlock });

      // A rollout of the cluster starts; no satellite worker runs, so it stays on.
      const lesson: FiledLesson = {
        lessonId: '20261204-lag',
        source: path.join(dir, 'no-such-lesson'),
        manifestSha256: '0'.repeat(64),
        fileCount: 0,
        totalBytes: 0,
        testQueries: [],
      };
      const hold = await startHoldLesson(operator.client, config, lesson, 'visibility test');
      const listed: string[] = [];
      for await (const wf of operator.client.workflow.list({ query: `WorkflowType = 'holdLesson' AND ExecutionStatus = 'Running'` }))
        listed.push(wf.workflowId);
      assert.deepEqual(listed, [], 'visibility has not seen the rollout yet (the lag this test is about)');

      await assert.rejects(
        startRollBack(operator.client, config, undefined, 'visibility test'),
        (err: Error) => err.message.includes(hold.workflowId),
        'the rollback is refused, naming the rollout that runs',
      );
      const scope = { cluster: config.cluster, reference: config.reference.name };
      assert.deepEqual(
        (await lessonRunsOn(operator.client, ops, scope)).map((r) => r.workflowId),
        [hold.workflowId],
        'the check finds the rollout by its recorded id',
      );

      // A run recorded a moment ago whose start has not come yet counts too; its record taken back, it does not.
      await recordLessonRun(ops, workflowIds.rollBackLesson('elsewhere'), 'rollBackLesson', 'visibility test');
      assert.deepEqual(
        (await lessonRunsOn(operator.client, ops, scope)).map((r) => r.workflowId),
        [hold.workflowId, workflowIds.rollBackLesson('elsewhere')],
        'a recorded run on its way to being started is counted',
      );
      await forgetLessonRun(ops, workflowIds.rollBackLesson('elsewhere'));

      // Ended, it no longer counts, even before visibility hears of it; its record goes.
      await hold.terminate('visibility test');
      assert.deepEqual(await lessonRunsOn(operator.client, ops, scope), [], 'a terminated rollout is not on');
      const left = await ops.query('SELECT 1 FROM lesson_runs WHERE workflow_id = $1', [hold.workflowId]);
      assert.equal(left.rowCount, 0, 'the record of a closed run is pruned');
      await unlock();
    },
  );

  test(
    'lessonplan temporal schema and temporal register do the same for a server they are given, and change nothing the second time',
    { timeout: 120_000 },
    async () => {
      const state = readStackState(config);
      const own = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-own-temporal-'));
      try {
        // A config of a cluster whose Temporal and PostgreSQL are given, not embedded: this stack's, by address.
        const file = writeTestConfig(own, (raw) => {
          raw.temporal.address = state.temporal!.address;
          raw.postgres.url = `postgres://${state.postgres!.user}@127.0.0.1:${state.postgres!.port}`;
          raw.postgres.passwordEnv = 'LESSONPLAN_TEST_PG_PASSWORD';
        });
        const env = { LESSONPLAN_TEST_PG_PASSWORD: readFileSync(state.postgres!.passwordFile, 'utf8').trim() };
        const cli = (...args: string[]) => execa('node', [BIN, '--config', file, ...args], { reject: false, env });

        const schema = await cli('temporal', 'schema');
        assert.equal(schema.exitCode, 0, schema.stderr);
        assert.match(schema.stdout, new RegExp(`at the schema of Temporal ${temporalServerTools().version}`));
        const register = await cli('temporal', 'register', '--json');
        assert.equal(register.exitCode, 0, register.stderr);
        assert.deepEqual(JSON.parse(register.stdout), {
          address: state.temporal!.address,
          namespace: config.temporal.namespace,
          namespaceCreated: false,
          searchAttributesAdded: [],
        });
        // Without the password, the schema command says which variable to set.
        const bare = await execa('node', [BIN, '--config', file, 'temporal', 'schema'], {
          reject: false,
          env: { LESSONPLAN_TEST_PG_PASSWORD: undefined },
        });
        assert.notEqual(bare.exitCode, 0);
        assert.match(bare.stderr, /LESSONPLAN_TEST_PG_PASSWORD/);
      } finally {
        rmSync(own, { recursive: true, force: true });
      }
    },
  );
});
