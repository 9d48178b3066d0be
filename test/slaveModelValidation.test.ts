/**
 * A slave runs the SQL of the models it fetches from the master, over plain HTTP: it must
 * validate each one as a deploy does, check it is the model it asked for (by checksum),
 * and refuse anything else before any SQL runs, with a failure that halts the slave
 * rather than retrying. A model recorded under a checksum of the first, locale-sorting
 * versions is still the model it names, and the slave keeps that name for it.
 *
 * The master is a small HTTP server on 127.0.0.1 with canned answers; the slave's own
 * client, catch-up and activity run against a real PostgreSQL database.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Database } from '../src/db/database';
import { modelChecksum } from '../src/model/checksum';
import { currentModel, migrateReplica } from '../src/model/deploy';
import { parseModel } from '../src/model/modelFile';
import { createSlaveActivities } from '../src/activities/slave';
import { catchUp, ModelIntegrityError } from '../src/activities/slave/catchUp';
import { createMasterClient } from '../src/activities/slave/masterClient';
import type { BlocksAfterAnswer, CommitBlock } from '../src/shared/commitblock';
import type { Model } from '../src/shared/model';
import { freshDatabase, onTeardown, testStack } from './helpers/stack';

/** A master that answers blocks and models from what the test put here. */
interface FakeMaster {
  url: string;
  models: Map<string, unknown>;
  blocks: CommitBlock[];
  masterModel: string | null;
  modelRequests: string[];
}

async function fakeMaster(): Promise<FakeMaster> {
  const master: FakeMaster = { url: '', models: new Map(), blocks: [], masterModel: null, modelRequests: [] };
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const answer = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    const model = /^\/v1\/models\/([^/]+)$/.exec(url.pathname);
    if (model) {
      const checksum = decodeURIComponent(model[1]!);
      master.modelRequests.push(checksum);
      if (!master.models.has(checksum)) return answer(404, { error: 'UnknownModel', message: `no model ${checksum}` });
      return answer(200, { checksum, model: master.models.get(checksum) });
    }
    if (url.pathname === '/v1/blocks') {
      const after = Number(url.searchParams.get('after'));
      const blocks = master.blocks.filter((b) => b.seq > after);
      const body: BlocksAfterAnswer = { blocks, masterSeq: master.blocks.at(-1)?.seq ?? 0, masterModel: master.masterModel };
      return answer(200, body);
    }
    answer(404, { error: 'NotFound', message: url.pathname });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTeardown(() => new Promise((resolve) => server.close(resolve)));
  master.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return master;
}

const client = (master: FakeMaster) => createMasterClient({ url: master.url, slave: 'slave-a', credential: 'secret' });

const block = (seq: number, checksum: string, id: number): CommitBlock => ({
  seq,
  modelChecksum: checksum,
  changes: [{ class: 'chata', op: 'upsert', values: { id, hrad: `h${id}` } }],
  origin: 'master',
  idempotencyKey: `k${seq}`,
  committedAt: new Date().toISOString(),
});

/** Czech collation puts "chata" after "hrad"; code-unit order puts it first. */
const COTTAGES: Model = parseModel({
  classes: [
    { name: 'hrad', key: ['id'], attributes: [{ name: 'id', type: 'integer', nullable: false }] },
    {
      name: 'chata',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'hrad', type: 'text' },
      ],
    },
  ],
});

/** The checksum the first versions recorded when the deploying process ran under cs_CZ. */
function czechChecksum(model: Model): string {
  const cs = new Intl.Collator('cs').compare;
  const canonical = {
    classes: [...model.classes]
      .sort((a, b) => cs(a.name, b.name))
      .map((c) => ({
        name: c.name,
        key: [...c.key],
        attributes: [...c.attributes].sort((a, b) => cs(a.name, b.name)).map((a) => ({ name: a.name, type: a.type, nullable: a.nullable })),
      })),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** A model whose attribute type would end the column definition and run a statement of its own. */
const INJECTED = {
  classes: [
    {
      name: 'chata',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'hrad', type: 'text); DROP TABLE x; --' },
      ],
    },
  ],
};

// Everything that needs a teardown is made here, not in a test: onTeardown's hook belongs to
// where it is first called, and one registered in a test would run when that test ends.
const stack = await testStack();

async function slaveDatabase(prefix: string): Promise<Database> {
  const { db } = await freshDatabase(stack, prefix);
  await migrateReplica(db);
  // The table the injected model would drop: it must survive.
  await db.query('CREATE TABLE x (v integer)');
  return db;
}

/** The tables a model made (or dropped): all but lessonplan's own. */
const tables = async (db: Database) =>
  (
    await db.query<{ t: string }>(
      "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'lp\\_%' AND tablename <> 'schema_migrations' ORDER BY 1",
    )
  ).rows.map((r) => r.t);

const options = { waitMs: 0, budgetMs: 10_000, batchSize: 100 };

/** One slave database and one master per test. */
const slaveWithMaster = async (prefix: string) => ({ db: await slaveDatabase(prefix), master: await fakeMaster() });
const slaves = {
  inject: await slaveWithMaster('inject'),
  mismatch: await slaveWithMaster('mismatch'),
  activity: await slaveWithMaster('activity'),
  legacy: await slaveWithMaster('legacy'),
};

describe('the models a slave fetches from the master', () => {
  test('a model with an attribute type that is not one of the known types is refused, nothing executed', async () => {
    const { db, master } = slaves.inject;
    // The checksum the block names is the injected model's own, so only validation can stop it.
    const checksum = modelChecksum(INJECTED as unknown as Model);
    master.models.set(checksum, INJECTED);
    master.blocks = [block(1, checksum, 1)];
    const refused: unknown = await catchUp(db, client(master), options).then(
      () => null,
      (err: unknown) => err,
    );
    // What ran first: the injected statement, if anything, shows in the tables.
    assert.deepEqual(await tables(db), ['x'], 'no table created, none dropped');
    assert.equal(await currentModel(db), null, 'no model recorded');
    assert.ok(refused instanceof ModelIntegrityError, `refused as a bad model, not with: ${String(refused)}`);
    assert.match(refused.message, new RegExp(`the master at ${master.url} sent model ${checksum.slice(0, 12)} that is not a valid model`));
    assert.match(refused.message, /classes\[0\]\.attributes\[1\]\.type/);
  });

  test('a model that does not hash to the checksum it was fetched for is refused, nothing executed', async () => {
    const { db, master } = slaves.mismatch;
    const asked = 'a'.repeat(64);
    master.models.set(asked, COTTAGES);
    master.blocks = [block(1, asked, 1)];
    await assert.rejects(
      catchUp(db, client(master), options),
      (err: Error) => err instanceof ModelIntegrityError && err.message.includes(`whose checksum is ${modelChecksum(COTTAGES)}, not ${asked}`),
    );
    assert.deepEqual(await tables(db), ['x']);
    assert.equal(await currentModel(db), null);
  });

  test('the slave activity halts on a bad model: a non-retryable ModelIntegrity failure an operator can act on', async () => {
    const { db, master } = slaves.activity;
    const checksum = modelChecksum(INJECTED as unknown as Model);
    master.models.set(checksum, INJECTED);
    master.blocks = [block(1, checksum, 1)];
    const activities = createSlaveActivities({ slave: 'slave-a', db, master: client(master) });
    const env = new MockActivityEnvironment();
    await assert.rejects(
      env.run(() => activities.pullAndApplyCommitblocks({ waitMs: 0, budgetMs: 10_000 })),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.nonRetryable &&
        err.type === 'ModelIntegrity' &&
        /^slave slave-a: the master at .* not a valid model/.test(err.message),
    );
    assert.deepEqual(await tables(db), ['x']);
  });

  test('a model recorded under a locale-sorted checksum of an earlier version is accepted and keeps that name', async () => {
    const legacy = czechChecksum(COTTAGES);
    assert.notEqual(legacy, modelChecksum(COTTAGES), 'the example must differ between the two orders');
    const { db, master } = slaves.legacy;
    master.models.set(legacy, COTTAGES);
    master.blocks = [block(1, legacy, 1), block(2, legacy, 2)];
    master.masterModel = legacy;
    const result = await catchUp(db, client(master), options);
    assert.equal(result.highWaterMark, 2, 'both blocks applied');
    assert.equal(result.modelChecksum, legacy);
    assert.equal((await currentModel(db))?.checksum, legacy, 'recorded under the name its blocks carry');
    assert.deepEqual((await db.query('SELECT id, hrad FROM chata ORDER BY id')).rows, [
      { id: 1, hrad: 'h1' },
      { id: 2, hrad: 'h2' },
    ]);
  });
});
