/**
 * Master/slave replication under generated concurrent saves (issue 14, "a generated test").
 * One replication cluster for the whole file (a master database and its API, two slaves
 * with their databases, the slave workers and slaveSync on the real Temporal server).
 * fast-check makes up scenarios: 4 to 12 writers, each with 1 to 6 saves of 1 to 3 changes
 * on a small key space (5 keys of one class, 6 of a second), upserts that set a random
 * subset of the attributes to random values of their types (null too) and deletes, each
 * writer on one path: straight to the master (saveOnMaster on a pool of its own), to the
 * master's HTTP API with a slave's credential, or through a slave (the `save` update).
 * Now and then a save is sent twice: again once answered, at the same time, or again on
 * the other path of the same origin (API <-> through the slave). Up to two model deploys
 * (each adds a nullable attribute of a random type to one of the classes) are made when
 * the writers have had a generated number of answers; a writer whose save was made under
 * an old model (ModelMismatch, "reload the model and save again") reloads the master's
 * current model and saves again, as a client would. All writers start at once and save
 * with no pause, so saves on one key overlap (the numbering lock taken after the business
 * writes made slaves drop a row the master kept: a delete racing an uncommitted insert).
 *
 * After the writers and deploys are done and every slave has the master's newest block
 * and model, the checks:
 *   1. every save sent has its block on the master exactly once, under its origin and
 *      idempotency key, with the changes of the send that was made; every answer to it
 *      (a re-send's included) gives that block's number; one of them says it made it
 *      (none may, when a send failed after it was made and was sent again); the play's
 *      blocks are numbered on from the ones before, with no gap;
 *   2. the master's tables are its blocks applied in number order (an oracle here, each
 *      value compared by PostgreSQL under its attribute's type);
 *   3. each slave: compareReplicas finds no difference with the master; it holds the
 *      play's blocks exactly as the master does (number, origin, key, model, changes),
 *      each once; it is at the master's model;
 *   4. a save answered through a slave is there on that slave when it answers.
 * After the last play, a last test checks the whole content (every play's tables) and
 * that each slave's blocks are exactly 1..N, each once.
 *
 * Why each play has tables of its own (classes item_p<n> and tag_p<n>, deployed at the
 * play's start, the play's checks limited to them) rather than a key range in shared
 * ones: a play that diverged would otherwise fail every play after it, and fast-check
 * would shrink towards whatever it tries first instead of towards the cause.
 *
 * CI: a fixed seed, 20 runs, generation and shrinking stopped after 120 s (a failure found
 * is still reported, with seed, path and the shrunk scenario). More, another seed, a
 * failure's replay, one scenario as printed (run directly: it starts its own stack, and
 * the suite runner passes no LESSONPLAN_REPLICATION_* variables on):
 *   LESSONPLAN_REPLICATION_RUNS=30 LESSONPLAN_REPLICATION_SEED=4711 LESSONPLAN_LOG_LEVEL=error node --import tsx --test test/replication.property.integration.test.ts
 *   LESSONPLAN_REPLICATION_SEED=<seed> LESSONPLAN_REPLICATION_PATH=<path> ... (the failure's replay line)
 *   LESSONPLAN_REPLICATION_EXAMPLE='<the counterexample's JSON object>' ... (played once, not shrunk)
 *   LESSONPLAN_REPLICATION_VERBOSE=1 (each play's summary on stderr)
 *   LESSONPLAN_REPLICATION_TIME_LIMIT_S=<s> (default 120 with the default runs, none otherwise)
 *   LESSONPLAN_REPLICATION_JSONB_STRINGS=1 (JSON strings as jsonb values too: see docArb)
 * A replay gives the same scenarios; the interleaving of the writers is the machine's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import fc from 'fast-check';
import { createMasterClient, MasterCallError, type MasterClient } from '../src/activities/slave/masterClient';
import { openDatabase, type Database } from '../src/db/database';
import { ModelMismatch, saveOnMaster } from '../src/master/commitblocks';
import { slaveCredential } from '../src/master/credentials';
import { currentModel, deployModel } from '../src/model/deploy';
import { parseModel } from '../src/model/modelFile';
import { compareReplicas } from '../src/model/replicaDigest';
import { saveThroughSlave } from '../src/operator/slaveSync';
import type { ObjectChange, ObjectValue, SaveAnswer } from '../src/shared/commitblock';
import { ATTRIBUTE_TYPES, type AttributeType, type ClassSpec, type Model } from '../src/shared/model';
import { SAVE_AGAIN_HINT, type SlaveSyncStatus } from '../src/shared/slaveSync';
import { replicationCluster, sleep } from './helpers/replication';
import { onTeardown } from './helpers/stack';

const RUNS = Number(process.env.LESSONPLAN_REPLICATION_RUNS ?? 20);
const SEED = Number(process.env.LESSONPLAN_REPLICATION_SEED ?? 20261114);
const PATH = process.env.LESSONPLAN_REPLICATION_PATH || undefined;
/** One scenario to play as it is, e.g. a counterexample a failure printed (JSON); nothing else is generated. */
const EXAMPLE = process.env.LESSONPLAN_REPLICATION_EXAMPLE ? (JSON.parse(process.env.LESSONPLAN_REPLICATION_EXAMPLE) as Scenario) : undefined;
const VERBOSE = Boolean(process.env.LESSONPLAN_REPLICATION_VERBOSE);
/** Top-level JSON strings as jsonb values too (the defect the jsonb test below shows makes every seed fail with them). */
const JSONB_STRINGS = Boolean(process.env.LESSONPLAN_REPLICATION_JSONB_STRINGS);
const TIME_LIMIT_S = Number(process.env.LESSONPLAN_REPLICATION_TIME_LIMIT_S ?? (process.env.LESSONPLAN_REPLICATION_RUNS ? 0 : 120));

const SLAVES = ['rp-a', 'rp-b'] as const;
const FILE = 'test/replication.property.integration.test.ts';
/** How long every slave gets to reach the master's newest block and model after a play. */
const SETTLE_MS = 90_000;
/** Sends of one save before the writer gives up: model mismatches and sends that failed with no answer. */
const MAX_SENDS = 12;
/** A save through a slave waits for its own block there; the suite's 5 s is tight on two busy cores. */
const SAVE_TIMEOUT = '30s';

// ---- what is generated ---------------------------------------------------------------

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type ItemValues = Partial<Record<'label' | 'qty' | 'n' | 'price' | 'flag' | 'at' | 'doc', ObjectValue>>;
type TagValues = Partial<Record<'weight' | 'note', ObjectValue>>;
/** `extra`: when not null, every attribute a deploy added to the class (in the writer's model) gets a value made from it. */
type Change =
  | { class: 'item'; id: number; op: 'upsert'; values: ItemValues; extra: number | null }
  | { class: 'item'; id: number; op: 'delete' }
  | { class: 'tag'; item: number; name: 'a' | 'b'; op: 'upsert'; values: TagValues; extra: number | null }
  | { class: 'tag'; item: number; name: 'a' | 'b'; op: 'delete' };
/** none; again once answered; twice at the same time; again once answered on the origin's other path. */
type Resend = 'none' | 'after' | 'together' | 'otherPath';
interface Save {
  changes: Change[];
  resend: Resend;
}
type WritePath = 'master' | 'api' | 'slave';
interface Writer {
  path: WritePath;
  /** Which slave's credential (api) or which slave (slave); unused for master. */
  slave: 0 | 1;
  saves: Save[];
}
interface Deploy {
  /** Made once the writers have had this many answers (or all are done). */
  afterAnswers: number;
  class: 'item' | 'tag';
  type: AttributeType;
}
interface Scenario {
  writers: Writer[];
  deploys: Deploy[];
}

const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { freq: 6, nil: null });
const textArb = fc.string({ unit: 'grapheme', maxLength: 10 }).filter((s) => !s.includes('\u0000'));
const integerArb = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const bigintArb = fc.oneof(fc.maxSafeInteger(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String));
const numericArb = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.stringMatching(/^[+-]?\d{1,24}(\.\d{0,12})?$/),
  fc.stringMatching(/^[+-]?\d{1,4}\.\d{1,4}[eE][+-]?\d{1,2}$/),
);
/** An instant from 1900 to 2199 written in a random zone offset, to the microsecond or not. */
const timestampArb = fc
  .record({
    ms: fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2199, 11, 31) }),
    micros: fc.option(fc.nat({ max: 999 }), { nil: null }),
    offsetMin: fc.integer({ min: -12 * 60, max: 14 * 60 }),
    sep: fc.constantFrom('T', ' '),
  })
  .map(({ ms, micros, offsetMin, sep }) => {
    const local = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 23);
    const zone =
      offsetMin === 0
        ? 'Z'
        : `${offsetMin < 0 ? '-' : '+'}${String(Math.floor(Math.abs(offsetMin) / 60)).padStart(2, '0')}:${String(Math.abs(offsetMin) % 60).padStart(2, '0')}`;
    return `${local.replace('T', sep)}${micros === null ? '' : String(micros).padStart(3, '0')}${zone}`;
  });
const jsonArb: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    textArb,
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('a', 'b', 'k', 'long key'), tie('value'), { maxKeys: 3, noNullPrototype: true }),
  ),
})).value;
/**
 * A jsonb attribute's value: null means SQL NULL, so the top level is never JSON null.
 * Nor, unless asked for, a JSON string: the master refuses one ("invalid input syntax for
 * type json") or stores another value (the string "[1]" becomes an array), on every seed;
 * the test "a jsonb attribute takes a JSON string" below keeps that defect in view, and the
 * generated saves test replication meanwhile.
 */
const docArb = jsonArb.filter((v) => v !== null && (JSONB_STRINGS || typeof v !== 'string'));

const itemValuesArb: fc.Arbitrary<ItemValues> = fc.record(
  {
    label: nullable(textArb),
    qty: nullable(integerArb),
    n: nullable(bigintArb),
    price: nullable(numericArb),
    flag: nullable(fc.boolean()),
    at: nullable(timestampArb),
    doc: nullable(docArb) as fc.Arbitrary<ObjectValue>,
  },
  { requiredKeys: [] },
);
const tagValuesArb: fc.Arbitrary<TagValues> = fc.record({ weight: nullable(integerArb), note: nullable(textArb) }, { requiredKeys: [] });
const extraArb = fc.option(fc.nat({ max: 1_000 }), { freq: 3, nil: null });
const itemId = fc.nat({ max: 4 });
const tagKey = { item: fc.nat({ max: 2 }), name: fc.constantFrom<'a' | 'b'>('a', 'b') };
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      class: fc.constant('item' as const),
      id: itemId,
      op: fc.constant('upsert' as const),
      values: itemValuesArb,
      extra: extraArb,
    }),
  },
  { weight: 3, arbitrary: fc.record({ class: fc.constant('item' as const), id: itemId, op: fc.constant('delete' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      class: fc.constant('tag' as const),
      ...tagKey,
      op: fc.constant('upsert' as const),
      values: tagValuesArb,
      extra: extraArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ class: fc.constant('tag' as const), ...tagKey, op: fc.constant('delete' as const) }) },
);
const saveArb: fc.Arbitrary<Save> = fc.record({
  changes: fc.array(changeArb, { minLength: 1, maxLength: 3 }),
  resend: fc.oneof(
    { weight: 8, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constantFrom('after' as const, 'together' as const, 'otherPath' as const) },
  ),
});
const writerArb: fc.Arbitrary<Writer> = fc.record({
  path: fc.oneof(
    { weight: 2, arbitrary: fc.constant('master' as const) },
    { weight: 2, arbitrary: fc.constant('api' as const) },
    { weight: 3, arbitrary: fc.constant('slave' as const) },
  ),
  slave: fc.constantFrom<0 | 1>(0, 1),
  saves: fc.array(saveArb, { minLength: 1, maxLength: 6 }),
});
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  writers: fc.array(writerArb, { minLength: 4, maxLength: 12 }),
  deploys: fc.array(
    fc.record({
      afterAnswers: fc.nat({ max: 40 }),
      class: fc.constantFrom<'item' | 'tag'>('item', 'tag'),
      type: fc.constantFrom(...ATTRIBUTE_TYPES),
    }),
    { maxLength: 2 },
  ),
});

// ---- the play's model ----------------------------------------------------------------

interface Names {
  item: string;
  tag: string;
}

function playClasses(names: Names): ClassSpec[] {
  return [
    {
      name: names.item,
      key: ['id'],
      attributes: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'label', type: 'text', nullable: true },
        { name: 'qty', type: 'integer', nullable: true },
        { name: 'n', type: 'bigint', nullable: true },
        { name: 'price', type: 'numeric', nullable: true },
        { name: 'flag', type: 'boolean', nullable: true },
        { name: 'at', type: 'timestamptz', nullable: true },
        { name: 'doc', type: 'jsonb', nullable: true },
      ],
    },
    {
      name: names.tag,
      key: ['item_id', 'name'],
      attributes: [
        { name: 'item_id', type: 'integer', nullable: false },
        { name: 'name', type: 'text', nullable: false },
        { name: 'weight', type: 'integer', nullable: true },
        { name: 'note', type: 'text', nullable: true },
      ],
    },
  ];
}

/** Attributes a deploy added: x0, x1 (the deploy's index in the play). */
const ADDED = /^x\d+$/;

/** A value of the type, made from n: what an upsert with `extra` puts in each added attribute. */
function valueFor(type: AttributeType, n: number): ObjectValue {
  switch (type) {
    case 'boolean':
      return n % 2 === 0;
    case 'integer':
      return n - 500;
    case 'bigint':
      return String(BigInt(n) * 9_007_199_254_740_993n);
    case 'numeric':
      return `${n}.${String(n % 97).padStart(2, '0')}`;
    case 'text':
      return `extra ${n}`;
    case 'timestamptz':
      return new Date(Date.UTC(2026, 0, 1) + n * 3_600_000).toISOString();
    case 'jsonb':
      return { n, list: [n, String(n)] };
  }
}

/** The save's changes as a writer with this model makes them. */
function changesFor(save: Save, model: Model, names: Names): ObjectChange[] {
  return save.changes.map((c) => {
    const name = c.class === 'item' ? names.item : names.tag;
    const key: Record<string, ObjectValue> = c.class === 'item' ? { id: c.id } : { item_id: c.item, name: c.name };
    if (c.op === 'delete') return { class: name, op: 'delete', key };
    const values: Record<string, ObjectValue> = { ...c.values, ...key };
    if (c.extra !== null) {
      const spec = model.classes.find((x) => x.name === name)!;
      spec.attributes.filter((a) => ADDED.test(a.name)).forEach((a, i) => (values[a.name] = valueFor(a.type, c.extra! + i)));
    }
    return { class: name, op: 'upsert', values };
  });
}

// ---- playing one scenario --------------------------------------------------------------

interface Context {
  /** The master's database on a pool of this file's own (direct saves, deploys, reads). */
  direct: Database;
  slaveDbs: Record<string, Database>;
  api: Record<string, MasterClient>;
  syncs: Record<string, WorkflowHandle>;
  client: Parameters<typeof saveThroughSlave>[0];
}

interface Sent {
  origin: string;
  answers: SaveAnswer[];
  /** What the send that made it carried (the answer that was not a duplicate). */
  made?: { modelChecksum: string; changes: ObjectChange[] };
  /** A send of it failed with no answer (maybe after it was made) and it was sent again. */
  uncertain: boolean;
}

interface Stats {
  sends: number;
  mismatches: number;
  retries: number;
  deploys: string[];
}

type Failure = 'mismatch' | 'no-answer';

/** What a client does on the failure: reload the model and save again, or save the same again; anything else is a defect. */
function classify(err: unknown): Failure | undefined {
  if (err instanceof ModelMismatch) return 'mismatch';
  // A failing master (5xx) may or may not have made the save: the same key again is safe, as after no answer.
  if (err instanceof MasterCallError) return err.kind === 'ModelMismatch' ? 'mismatch' : err.retryable ? 'no-answer' : undefined;
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      if (cause.type === 'ModelMismatch') return 'mismatch';
      // Each message says "saving again with the same idempotency key is safe".
      if (cause.type === 'SaveTimedOut' || cause.type === 'SaveNotYetApplied' || cause.type === 'MasterUnreachable' || cause.type === 'MasterFailed')
        return 'no-answer';
    }
    if ((cause?.message ?? '').endsWith(SAVE_AGAIN_HINT)) return 'no-answer';
  }
  return undefined;
}

const masterMark = async (db: Database) =>
  (
    await db.query<{ seq: string; checksum: string | null }>(
      'SELECT coalesce(max(seq), 0) AS seq, (SELECT checksum FROM lp_models WHERE current) AS checksum FROM lp_commitblocks',
    )
  ).rows[0]!;

let plays = 0;

async function play(ctx: Context, s: Scenario): Promise<void> {
  const began = Date.now();
  const p = ++plays;
  const names: Names = { item: `item_p${p}`, tag: `tag_p${p}` };
  const stats: Stats = { sends: 0, mismatches: 0, retries: 0, deploys: [] };
  const base = await currentModel(ctx.direct);
  await deployModel(ctx.direct, parseModel({ classes: [...(base?.model.classes ?? []), ...playClasses(names)] }));
  const startSeq = Number((await masterMark(ctx.direct)).seq);
  const start = (await currentModel(ctx.direct))!;
  const sent = new Map<string, Sent>();

  // Deploys wait for a number of answers; the last writer done lets every deploy still waiting go.
  let answered = 0;
  let writersDone = false;
  const waiting: { n: number; go: () => void }[] = [];
  const wake = () => {
    for (const w of waiting.splice(0)) {
      if (writersDone || answered >= w.n) w.go();
      else waiting.push(w);
    }
  };
  const answersReach = (n: number) => new Promise<void>((go) => (waiting.push({ n, go }), wake()));

  /** Sends one save until answered: a mismatch rebuilds it under the master's current model, no answer sends the same again. */
  const send = async (
    path: WritePath,
    slave: string,
    id: string,
    build: () => Promise<{ modelChecksum: string; changes: ObjectChange[] }>,
    onMismatch: () => Promise<void>,
  ): Promise<SaveAnswer> => {
    const origin = path === 'master' ? 'master' : slave;
    const record = sent.get(id) ?? { origin, answers: [], uncertain: false };
    sent.set(id, record);
    assert.equal(record.origin, origin, `${id} is sent under one origin`);
    for (let attempt = 1; ; attempt++) {
      const request = await build();
      stats.sends++;
      try {
        let answer: SaveAnswer;
        if (path === 'master') answer = await saveOnMaster(ctx.direct, { ...request, origin, idempotencyKey: id });
        else if (path === 'api') answer = await ctx.api[slave]!.save({ ...request, idempotencyKey: id }, { timeoutMs: 30_000 });
        else {
          const result = await saveThroughSlave(ctx.client, slave, { ...request, idempotencyKey: id });
          // Read-your-writes: when a save through a slave answers, that slave holds its block.
          assert.ok(
            result.highWaterMark >= result.seq,
            `${id} through ${slave}: answered at mark ${result.highWaterMark} before its block ${result.seq}`,
          );
          const here = await ctx.slaveDbs[slave]!.query('SELECT 1 FROM lp_commitblocks WHERE seq = $1', [result.seq]);
          assert.equal(here.rowCount, 1, `${id} through ${slave}: answered, but block ${result.seq} is not on ${slave}`);
          answer = { seq: result.seq, duplicate: result.duplicate };
        }
        record.answers.push(answer);
        if (!answer.duplicate) {
          assert.equal(record.made, undefined, `${id} was made twice (blocks ${record.answers.map((a) => a.seq).join(', ')})`);
          record.made = request;
        }
        answered++;
        wake();
        return answer;
      } catch (err) {
        const kind = classify(err);
        if (!kind)
          throw new Error(
            `${id} (${path}${path === 'master' ? '' : ` ${slave}`}) failed: ${(err as Error).message} ${(err as { cause?: Error }).cause?.message ?? ''}`,
            { cause: err },
          );
        if (attempt >= MAX_SENDS)
          throw new Error(`${id} (${path}) was not answered in ${attempt} sends; last: ${(err as Error).message}`, { cause: err });
        if (kind === 'mismatch') {
          stats.mismatches++;
          await onMismatch();
        } else {
          stats.retries++;
          record.uncertain = true;
          await sleep(100 * attempt);
        }
      }
    }
  };

  const writer = async (w: Writer, index: number) => {
    const slave = SLAVES[w.slave];
    // The model the writer saves under: the play's first, until the master says it moved on.
    let view = start;
    const reload = async () => {
      view = (await currentModel(ctx.direct))!;
    };
    for (const [i, save] of w.saves.entries()) {
      const id = `p${p}-w${index}-s${i}`;
      let last: { modelChecksum: string; changes: ObjectChange[] } | undefined;
      const build = async () => (last = { modelChecksum: view.checksum, changes: changesFor(save, view.model, names) });
      // A re-send is the same request again: the one last sent, whatever became of it.
      const same = async () => last!;
      if (save.resend === 'together') {
        const [a, b] = await Promise.all([send(w.path, slave, id, build, reload), send(w.path, slave, id, build, reload)]);
        assert.equal(a.seq, b.seq, `${id} sent twice at once: one block, both answers name it`);
        continue;
      }
      const first = await send(w.path, slave, id, build, reload);
      if (save.resend === 'none') continue;
      // The origin's other path: a slave's credential saves through the API and through that slave alike.
      const again = save.resend === 'otherPath' && w.path !== 'master' ? (w.path === 'api' ? 'slave' : 'api') : w.path;
      const second = await send(again, slave, id, same, reload);
      assert.deepEqual(second, { seq: first.seq, duplicate: true }, `${id} sent again (${again}) after block ${first.seq}: answered as that block`);
    }
  };

  const deploying = (async () => {
    for (const [i, d] of [...s.deploys].sort((a, b) => a.afterAnswers - b.afterAnswers).entries()) {
      await answersReach(d.afterAnswers);
      const current = (await currentModel(ctx.direct))!;
      const target = d.class === 'item' ? names.item : names.tag;
      const next = parseModel({
        classes: current.model.classes.map((c) =>
          c.name === target ? { ...c, attributes: [...c.attributes, { name: `x${i}`, type: d.type, nullable: true }] } : c,
        ),
      });
      const result = await deployModel(ctx.direct, next);
      assert.ok(result.applied, `deploy ${i} (${target}.x${i} ${d.type}) was applied`);
      stats.deploys.push(`${target}.x${i} ${d.type} after ${answered} answers`);
    }
  })();

  let outcome = 'passed';
  try {
    const writing = await Promise.allSettled(s.writers.map((w, i) => writer(w, i)));
    writersDone = true;
    wake();
    const deployed = await Promise.allSettled([deploying]);
    for (const r of [...writing, ...deployed]) if (r.status === 'rejected') throw r.reason;

    const mark = await masterMark(ctx.direct);
    const endSeq = Number(mark.seq);
    await settle(ctx, endSeq, mark.checksum!);
    await checkMaster(ctx, names, sent, startSeq, endSeq);
    const model = (await currentModel(ctx.direct))!;
    const ours: Model = { classes: model.model.classes.filter((c) => c.name === names.item || c.name === names.tag) };
    for (const slave of SLAVES) await checkSlave(ctx, slave, ours, model.checksum, startSeq, endSeq);
  } catch (err) {
    outcome = `FAILED: ${(err as Error).message}`;
    // Every failure as it happened (shrinking plays many): the first one is often the clearest.
    failures.push(`play ${p}: ${(err as Error).message}\n  scenario: ${JSON.stringify(s)}`);
    throw err;
  } finally {
    if (VERBOSE) {
      const saves = s.writers.reduce((n, w) => n + w.saves.length, 0);
      process.stderr.write(
        `[replication] play ${p}: ${s.writers.length} writers (${s.writers.map((w) => `${w.path}${w.path === 'master' ? '' : w.slave}`).join(' ')}), ${saves} saves, ` +
          `${stats.sends} sends, ${stats.mismatches} mismatches, ${stats.retries} sent again, deploys [${stats.deploys.join('; ')}], ${Date.now() - began} ms: ${outcome}\n`,
      );
    }
  }
}

const failures: string[] = [];

/** Waits until every slave has the master's newest block and model; a halted slave fails at once. */
async function settle(ctx: Context, seq: number, checksum: string): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  for (const slave of SLAVES) {
    for (let look = 0; ; look++) {
      const here = await masterMark(ctx.slaveDbs[slave]!);
      if (Number(here.seq) >= seq && here.checksum === checksum) break;
      if (look % 10 === 9 || Date.now() > deadline) {
        const status = await ctx.syncs[slave]!.query<SlaveSyncStatus>('status');
        if (status.halt) assert.fail(`${slave} halted: ${status.halt.reason}`);
        if (Date.now() > deadline)
          assert.fail(
            `${slave} is at block ${here.seq} and model ${here.checksum?.slice(0, 12)} after ${SETTLE_MS} ms; the master at ${seq} and ${checksum.slice(0, 12)}; status ${JSON.stringify(status)}`,
          );
      }
      await sleep(100);
    }
  }
}

type BlockRow = {
  seq: string;
  origin: string;
  idempotency_key: string;
  model_checksum: string;
  changes: ObjectChange[];
  digest: string;
};

const blocksBetween = async (db: Database, after: number, upTo: number) =>
  (
    await db.query<BlockRow>(
      'SELECT seq, origin, idempotency_key, model_checksum, changes, md5(changes::text) AS digest FROM lp_commitblocks WHERE seq > $1 AND seq <= $2 ORDER BY seq',
      [after, upTo],
    )
  ).rows;

/** JSON as it comes back from PostgreSQL's jsonb: -0 is 0, and so on. */
const asJson = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

async function checkMaster(ctx: Context, names: Names, sent: Map<string, Sent>, startSeq: number, endSeq: number): Promise<void> {
  const blocks = await blocksBetween(ctx.direct, startSeq, endSeq);
  assert.deepEqual(
    blocks.map((b) => Number(b.seq)),
    Array.from({ length: endSeq - startSeq }, (_, i) => startSeq + 1 + i),
    `the play's blocks are numbered ${startSeq + 1}..${endSeq}, with no gap`,
  );
  const byId = new Map<string, BlockRow[]>();
  for (const b of blocks) byId.set(`${b.origin}/${b.idempotency_key}`, [...(byId.get(`${b.origin}/${b.idempotency_key}`) ?? []), b]);
  for (const [id, record] of sent) {
    const mine = byId.get(`${record.origin}/${id}`) ?? [];
    byId.delete(`${record.origin}/${id}`);
    assert.equal(
      mine.length,
      1,
      `${record.origin}/${id} has ${mine.length} blocks on the master (${mine.map((b) => b.seq).join(', ')}); answers ${JSON.stringify(record.answers)}`,
    );
    const block = mine[0]!;
    for (const a of record.answers) assert.equal(a.seq, Number(block.seq), `${id}: an answer names block ${a.seq}, its block is ${block.seq}`);
    const made = record.answers.filter((a) => !a.duplicate).length;
    assert.ok(record.uncertain ? made <= 1 : made === 1, `${id}: ${made} answers say they made it (${JSON.stringify(record.answers)})`);
    if (record.made) {
      assert.equal(block.model_checksum, record.made.modelChecksum, `${id}: the block's model is the one the save was made under`);
      assert.deepEqual(block.changes, asJson(record.made.changes), `${id}: block ${block.seq} holds the changes sent`);
    }
  }
  assert.deepEqual([...byId.keys()], [], 'every block of the play is a save the writers sent');
  await checkOracle(ctx.direct, names, blocks);
}

/**
 * The master's tables of the play must be what its blocks give when applied in number
 * order: a key's last change decides whether it is there, an upsert sets the attributes
 * it names (a new row has null in the rest). Each expected row is looked for with every
 * attribute compared by PostgreSQL under the attribute's type.
 */
async function checkOracle(db: Database, names: Names, blocks: BlockRow[]): Promise<void> {
  const model = (await currentModel(db))!.model;
  for (const name of [names.item, names.tag]) {
    const spec = model.classes.find((c) => c.name === name)!;
    const rows = new Map<string, Record<string, ObjectValue>>();
    for (const b of blocks) {
      for (const c of b.changes) {
        if (c.class !== name) continue;
        const given = c.op === 'upsert' ? c.values : c.key;
        const key = JSON.stringify(spec.key.map((k) => given[k]));
        if (c.op === 'delete') rows.delete(key);
        else rows.set(key, { ...(rows.get(key) ?? {}), ...c.values });
      }
    }
    const count = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${name}"`);
    const actual = async () =>
      (await db.query<{ row: unknown }>(`SELECT to_jsonb(t) AS row FROM "${name}" t ORDER BY ${spec.key.map((k) => `"${k}"`).join(', ')}`)).rows.map(
        (r) => r.row,
      );
    for (const row of rows.values()) {
      const params = spec.attributes.map((a) => {
        const v = row[a.name] ?? null;
        return a.type === 'jsonb' && v !== null ? JSON.stringify(v) : v;
      });
      const where = spec.attributes.map((a, i) => `"${a.name}" IS NOT DISTINCT FROM $${i + 1}::${a.type}`).join(' AND ');
      const found = await db.query(`SELECT 1 FROM "${name}" WHERE ${where}`, params);
      if (found.rowCount !== 1)
        assert.fail(
          `the master's ${name} has no row ${JSON.stringify(row)} (its blocks applied in order give it); the master has ${JSON.stringify(await actual())}`,
        );
    }
    if (Number(count.rows[0]!.n) !== rows.size)
      assert.fail(
        `the master's ${name} has ${count.rows[0]!.n} rows, its blocks applied in order give ${rows.size}: ${JSON.stringify([...rows.values()])}; the master has ${JSON.stringify(await actual())}`,
      );
  }
}

async function checkSlave(ctx: Context, slave: string, ours: Model, checksum: string, startSeq: number, endSeq: number): Promise<void> {
  const db = ctx.slaveDbs[slave]!;
  const differences = await compareReplicas(ctx.direct, db, ours);
  assert.deepEqual(differences, [], `${slave} holds the master's rows of the play`);
  const summary = (b: BlockRow) => ({ seq: Number(b.seq), origin: b.origin, key: b.idempotency_key, model: b.model_checksum, changes: b.digest });
  assert.deepEqual(
    (await blocksBetween(db, startSeq, endSeq)).map(summary),
    (await blocksBetween(ctx.direct, startSeq, endSeq)).map(summary),
    `${slave} holds the play's blocks as the master does`,
  );
  const twice = await db.query<{ seq: string; n: string }>(
    'SELECT seq, count(*) AS n FROM lp_commitblocks WHERE seq > $1 AND seq <= $2 GROUP BY seq HAVING count(*) > 1',
    [startSeq, endSeq],
  );
  assert.deepEqual(twice.rows, [], `${slave} applied each of the play's blocks once`);
  const keys = await db.query<{ origin: string; idempotency_key: string; n: string }>(
    `SELECT origin, idempotency_key, count(*) AS n FROM lp_commitblocks WHERE seq > $1 AND seq <= $2 GROUP BY origin, idempotency_key HAVING count(*) > 1`,
    [startSeq, endSeq],
  );
  assert.deepEqual(keys.rows, [], `${slave} holds each (origin, idempotency key) once`);
  assert.equal((await currentModel(db))?.checksum, checksum, `${slave} is at the master's model`);
}

describe('replication under generated concurrent saves on both paths, with model deploys between (fast-check, real master, two slaves)', async () => {
  const cluster = await replicationCluster('repprop', [...SLAVES], { edit: (raw) => (raw.timings = { ...raw.timings, saveTimeout: SAVE_TIMEOUT }) });
  // Direct saves, deploys and reads on a pool of their own, big enough for every writer at once.
  const direct = openDatabase(cluster.master.url, { max: 16, applicationName: 'test-repprop-direct' });
  onTeardown(() => direct.close());
  const ctx: Context = {
    direct,
    slaveDbs: Object.fromEntries(SLAVES.map((s) => [s, cluster.slaves[s]!.db])),
    api: Object.fromEntries(
      SLAVES.map((s) => [
        s,
        createMasterClient({
          url: cluster.master.service().url,
          slave: s,
          credential: slaveCredential(
            cluster.config,
            cluster.config.slaves.find((x) => x.name === s)!,
          ),
        }),
      ]),
    ),
    syncs: {},
    client: cluster.client,
  };
  for (const s of SLAVES) ctx.syncs[s] = await cluster.sync(s);

  test('a jsonb attribute takes a JSON string as a value, and keeps it as that string (the generated saves found {"doc": ""} refused)', async () => {
    const base = await currentModel(direct);
    const spec: ClassSpec = {
      name: 'jsonb_strings',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'doc', type: 'jsonb', nullable: true },
      ],
    };
    await deployModel(direct, parseModel({ classes: [...(base?.model.classes ?? []), spec] }));
    const modelChecksum = (await currentModel(direct))!.checksum;
    // The validator takes any JSON value for jsonb; a string is one, whatever it looks like.
    const strings = ['', 'plain words', '[1]', '{"a": 1}', '5'];
    const wrong: string[] = [];
    for (const [id, doc] of strings.entries()) {
      try {
        await saveOnMaster(direct, {
          modelChecksum,
          origin: 'master',
          idempotencyKey: `jsonb-string-${id}`,
          changes: [{ class: spec.name, op: 'upsert', values: { id, doc } }],
        });
      } catch (err) {
        wrong.push(`${JSON.stringify(doc)} refused: ${(err as Error).message}`);
        continue;
      }
      const { rows } = await direct.query<{ same: boolean; stored: string }>(
        'SELECT doc = to_jsonb($2::text) AS same, doc::text AS stored FROM jsonb_strings WHERE id = $1',
        [id, doc],
      );
      if (!rows[0]?.same) wrong.push(`${JSON.stringify(doc)} stored as ${rows[0]?.stored}`);
    }
    assert.deepEqual(wrong, [], 'every JSON string saved as a jsonb value is stored as that string');
  });

  test(
    `every slave ends with the master's rows and blocks, each block made and applied once (${EXAMPLE ? 'one given scenario' : `${RUNS} runs, seed ${SEED}`})`,
    { timeout: TIME_LIMIT_S ? (TIME_LIMIT_S + 150) * 1000 : Infinity },
    async () => {
      let playing: Promise<void> = Promise.resolve();
      try {
        const details = await fc.check(
          fc.asyncProperty(scenarioArb, (s) => (playing = play(ctx, s))),
          {
            numRuns: EXAMPLE ? 1 : RUNS,
            // A given scenario is played as it is, not shrunk.
            ...(EXAMPLE ? { examples: [[EXAMPLE]] as [Scenario][], endOnFailure: true } : {}),
            seed: SEED,
            ...(PATH ? { path: PATH } : {}),
            plugins: TIME_LIMIT_S ? [fc.interruptAfterTimeLimit(TIME_LIMIT_S * 1000)] : [],
          },
        );
        if (details.interrupted && !details.failed)
          process.stderr.write(`[replication] the time limit stopped it after ${details.numRuns} of ${RUNS} runs\n`);
        if (details.failed) {
          const replay = [
            `replay: LESSONPLAN_REPLICATION_SEED=${details.seed} LESSONPLAN_REPLICATION_PATH=${details.counterexamplePath} LESSONPLAN_LOG_LEVEL=error node --import tsx --test ${FILE}`,
            `play the shrunk scenario once: LESSONPLAN_REPLICATION_EXAMPLE='${JSON.stringify((details.counterexample as [Scenario] | null)?.[0])}' LESSONPLAN_LOG_LEVEL=error node --import tsx --test ${FILE}`,
          ];
          process.stderr.write(`[replication] ${replay.join('\n[replication] ')}\n`);
          throw new Error(
            [
              `failed after ${details.numRuns} runs and ${details.numShrinks} shrinks (seed ${details.seed}, path ${details.counterexamplePath}): ${(details.errorInstance as Error)?.message}`,
              ...replay,
              `the first failure: ${failures[0]}`,
            ].join('\n'),
            { cause: details.errorInstance },
          );
        }
      } finally {
        // A play the time limit interrupted goes on in the background: let it end before the workers stop.
        await Promise.race([playing.catch(() => undefined), sleep(60_000)]);
      }
    },
  );

  test("after every play: each slave holds the master's whole content, and its blocks are 1..N, each once", async () => {
    const mark = await masterMark(direct);
    await settle(ctx, Number(mark.seq), mark.checksum!);
    const model = (await currentModel(direct))!;
    for (const slave of SLAVES) {
      const db = ctx.slaveDbs[slave]!;
      assert.deepEqual(await compareReplicas(direct, db, model.model), [], `${slave} holds the master's rows`);
      const seqs = await db.query<{ n: string; distinct_n: string; low: string | null; high: string | null; keys: string }>(
        'SELECT count(*) AS n, count(DISTINCT seq) AS distinct_n, min(seq) AS low, max(seq) AS high, count(DISTINCT (origin, idempotency_key)) AS keys FROM lp_commitblocks',
      );
      const n = mark.seq;
      assert.deepEqual(
        seqs.rows[0],
        { n, distinct_n: n, low: n === '0' ? null : '1', high: n === '0' ? null : n, keys: n },
        `${slave}'s blocks are 1..${n}, each once, each (origin, key) once`,
      );
      assert.equal((await currentModel(db))?.checksum, model.checksum, `${slave} is at the master's model`);
    }
  });
});
