/**
 * The master's commitblocks: a save applies its changes and appends its block in one
 * transaction; blocks are read back in sequence order.
 *
 * Why the numbering lock is the first thing a save takes, and is held until commit: the
 * slaves apply blocks in number order, so the master must have applied them in that
 * order too. With the business writes done before the lock, two saves on one key could
 * apply in one order and be numbered in the other: a delete that found nothing (the
 * insert it raced was not committed yet) numbered after that insert drops, on every
 * slave, a row the master keeps. Under the lock, saves apply, number and commit in turn,
 * so the blocks' order is the order of their effects for every pair of saves.
 *
 * Why no block is ever skipped: the numbers are max(seq) + 1 onwards, taken under the
 * same lock, so a later transaction can only number itself after the earlier one has
 * committed, and visibility order is number order (a sequence's numbers become visible in
 * commit order, and a slave that already read 8 would skip 7).
 *
 * Why saves share transactions: holding the lock to commit makes the commit (its WAL
 * flush) the bottleneck, one save per flush. Saves that arrive while a transaction holds
 * the lock therefore go together in the next one (group commit), numbered one after
 * another, with no gap, in the order they applied. Their changes are applied together in
 * the order of their numbers; if that fails, the transaction is made again with a
 * savepoint per save, so that a bad save is rolled back and refused alone.
 */
import { asDatabaseError, type Database, type Transaction } from '../db/database';
import { GroupCommit, type Outcome } from './groupCommit';
import { lockForTransaction } from '../db/locks';
import { applyObjectChanges, checkObjectChanges, InvalidChange } from '../model/objectChanges';
import type { BlocksAfterAnswer, CommitBlock, SaveAnswer, SaveRequest } from '../shared/commitblock';
import type { Model } from '../shared/model';

/** NOTIFY channel: a committed save wakes the slaves' long polls (delivered at commit, never before). */
export const NEWS_CHANNEL = 'lp_commitblocks';

export class ModelMismatch extends Error {
  override readonly name = 'ModelMismatch';
}

/** PostgreSQL's deadlock_detected and serialization_failure: the transaction did nothing, and may simply run again. */
const TRY_AGAIN = new Set(['40P01', '40001']);
const ATTEMPTS = 5;

/** The most saves one transaction takes: a bound on how long the lock is held and how much one rollback costs. */
const MAX_SAVES_PER_TRANSACTION = 256;

/** One group commit per pool: the saves of one process share transactions. */
const batches = new WeakMap<Database, GroupCommit<SaveRequest, SaveAnswer>>();

export async function saveOnMaster(db: Database, request: SaveRequest): Promise<SaveAnswer> {
  // A save sent again (a retry, a re-sent file) is found by its key in the transaction it joins (the keys are
  // remembered apart from the blocks, which retention prunes: migration 005), and answered with its first number.
  let group = batches.get(db);
  if (!group) {
    group = new GroupCommit((requests) => commitSaves(db, requests), MAX_SAVES_PER_TRANSACTION);
    batches.set(db, group);
  }
  return group.submit(request);
}

/**
 * Saves in one transaction under the numbering lock. The statements are few and do not
 * grow with the saves: the keys looked up, every save's changes applied together
 * (consecutive rows of one class in one statement, as a slave applies a run of blocks),
 * the blocks and keys written with unnest in one statement. The lock is then held for a handful of round
 * trips however many saves share it. If the changes fail together, the transaction is
 * rolled back and made again with a savepoint per save, so that the bad one is refused
 * alone. Retried whole when PostgreSQL says to try again.
 */
async function commitSaves(db: Database, requests: SaveRequest[]): Promise<Outcome<SaveAnswer>[]> {
  let isolate = false;
  for (let attempt = 1; ;) {
    try {
      return await db.transaction((tx) => saveTogether(db.label, tx, requests, isolate));
    } catch (err) {
      // Not a failed attempt: the same saves go again, each in its savepoint.
      if (err instanceof OneSaveFailed && !isolate) {
        isolate = true;
        continue;
      }
      if (isTryAgain(err) && attempt < ATTEMPTS) {
        // Rolled back whole: nothing of it was written. A short, growing pause lets the other transaction finish.
        await new Promise((r) => setTimeout(r, 10 * attempt));
        attempt++;
        continue;
      }
      throw err;
    }
  }
}

/** Thrown inside the shared transaction when the saves' changes failed together: the batch runs again isolated. */
class OneSaveFailed extends Error {}

async function saveTogether(label: string, tx: Transaction, requests: SaveRequest[], isolate: boolean): Promise<Outcome<SaveAnswer>[]> {
  await lockForTransaction(tx, 'numbering');
  const { rows } = await tx.query<{
    checksum: string | null;
    model: Model | null;
    seq: string;
    earlier: { origin: string; key: string; seq: string }[];
  }>(
    `SELECT (SELECT checksum FROM lp_models WHERE current) AS checksum, (SELECT model FROM lp_models WHERE current) AS model,
            (SELECT coalesce(max(seq), 0) FROM lp_commitblocks) AS seq,
            (SELECT coalesce(json_agg(json_build_object('origin', k.origin, 'key', k.idempotency_key, 'seq', k.seq)), '[]')
               FROM lp_saved_keys k JOIN unnest($1::text[], $2::text[]) AS r(origin, key) ON k.origin = r.origin AND k.idempotency_key = r.key) AS earlier`,
    [requests.map((r) => r.origin), requests.map((r) => r.idempotencyKey)],
    { prepared: 'lp_save_head' },
  );
  const head = rows[0]!;
  // The keys saved before, and those saved earlier in this transaction: one number per key.
  const numbered = new Map(head.earlier.map((e) => [JSON.stringify([e.origin, e.key]), Number(e.seq)]));
  let seq = Number(head.seq);
  const made: { request: SaveRequest; seq: number }[] = [];
  const outcomes: Outcome<SaveAnswer>[] = [];
  for (const request of requests) {
    const key = JSON.stringify([request.origin, request.idempotencyKey]);
    const earlier = numbered.get(key);
    if (earlier !== undefined) {
      outcomes.push({ ok: true, value: { seq: earlier, duplicate: true } });
      continue;
    }
    // Refusals found before anything is written need no savepoint: the save's own model and changes.
    const refusal = modelMismatch(head.checksum, request) ?? invalidChange(head.model!, request);
    if (refusal) {
      outcomes.push({ ok: false, error: refusal });
      continue;
    }
    if (isolate) {
      const failure = await applyAlone(tx, head.model!, request);
      if (failure) {
        // As the save alone would have failed: PostgreSQL's errors name the database.
        outcomes.push({ ok: false, error: asDatabaseError(label, failure) });
        continue;
      }
    }
    seq += 1;
    numbered.set(key, seq);
    made.push({ request, seq });
    outcomes.push({ ok: true, value: { seq, duplicate: false } });
  }
  if (!isolate && made.length > 0) {
    try {
      await applyObjectChanges(
        tx,
        head.model!,
        made.flatMap((m) => m.request.changes),
        { checkValues: false },
      );
    } catch (err) {
      throw isTryAgain(err) ? err : new OneSaveFailed();
    }
  }
  if (made.length > 0) {
    // The blocks, their keys and the news in one statement. NOTIFY is delivered at commit, once for the
    // transaction: the slaves' long polls wake and read every new block.
    await tx.query(
      `WITH blocks AS (
         INSERT INTO lp_commitblocks (seq, model_checksum, changes, origin, idempotency_key, committed_at)
         SELECT seq, model, changes, origin, key, now() FROM unnest($1::bigint[], $2::text[], $3::jsonb[], $4::text[], $5::text[]) AS b(seq, model, changes, origin, key)
         RETURNING origin, idempotency_key, seq
       ), keys AS (
         INSERT INTO lp_saved_keys (origin, idempotency_key, seq) SELECT origin, idempotency_key, seq FROM blocks
       )
       SELECT pg_notify($6, $7)`,
      [
        made.map((m) => m.seq),
        made.map((m) => m.request.modelChecksum),
        made.map((m) => JSON.stringify(m.request.changes)),
        made.map((m) => m.request.origin),
        made.map((m) => m.request.idempotencyKey),
        NEWS_CHANNEL,
        String(seq),
      ],
      { prepared: 'lp_save_blocks' },
    );
  }
  return outcomes;
}

/** A save's changes applied in a savepoint of their own: the database's refusal, undone, or undefined when they went in. */
async function applyAlone(tx: Transaction, model: Model, request: SaveRequest): Promise<unknown> {
  await tx.query('SAVEPOINT lp_save');
  try {
    await applyObjectChanges(tx, model, request.changes, { checkValues: false });
  } catch (err) {
    if (isTryAgain(err)) throw err;
    await tx.query('ROLLBACK TO SAVEPOINT lp_save');
    return err;
  }
  await tx.query('RELEASE SAVEPOINT lp_save');
  return undefined;
}

/** The save's changes checked against the model alone, so that the refusal's indexes are its own. */
function invalidChange(model: Model, request: SaveRequest): InvalidChange | undefined {
  try {
    checkObjectChanges(model, request.changes);
    return undefined;
  } catch (err) {
    if (err instanceof InvalidChange) return err;
    throw err;
  }
}

/** Why a save cannot be made under the master's model, if it cannot. */
function modelMismatch(current: string | null, request: SaveRequest): ModelMismatch | undefined {
  if (current === null) return new ModelMismatch('the master has no model deployed yet; deploy one first');
  if (current === request.modelChecksum) return undefined;
  return new ModelMismatch(
    `the save is made under model ${request.modelChecksum.slice(0, 12)}, but the master is at ${current.slice(0, 12)}; reload the model and save again`,
  );
}

const isTryAgain = (err: unknown) => {
  const code = (err as { code?: string }).code;
  return code !== undefined && TRY_AGAIN.has(code);
};

/**
 * The most change data one answer to a slave carries (the blocks' changes as JSON text).
 * An answer is built whole in memory on both sides; large saves would otherwise take it
 * past V8's string limit or the heap, and every pull would fail the same way. A single
 * block larger than this still goes, alone (a save is bounded by the API's body limit).
 */
export const MAX_ANSWER_BYTES = 8 << 20;

/** Blocks after `after`, in order: at most `limit`, and no more than MAX_ANSWER_BYTES of changes (at least one block). */
export async function blocksAfter(db: Pick<Database, 'query'>, after: number, limit: number): Promise<CommitBlock[]> {
  return (await answerBlocksAfter(db, after, limit)).blocks;
}

export interface MasterAnswer extends BlocksAfterAnswer {
  /** The oldest block the master holds (null: none). */
  oldestHeld: number | null;
  /** Who made the master's block numbered `after` (null when it holds none by that number). */
  atAfter: { origin: string; idempotencyKey: string } | null;
}

/**
 * Blocks after `after` with where the master stands, in one statement: one snapshot, so
 * the blocks and the position agree, and one round trip, which a slave's long poll makes
 * for every commit it wakes up to. The blocks come back as one JSON array built by
 * PostgreSQL, so the changes are parsed once and not row by row.
 */
export async function answerBlocksAfter(db: Pick<Database, 'query'>, after: number, limit: number): Promise<MasterAnswer> {
  const { rows } = await db.query<{
    newest: string | null;
    oldest: string | null;
    model: string | null;
    at_after: { origin: string; idempotencyKey: string } | null;
    // committedAt as PostgreSQL's ISO text: a JS Date would drop the microseconds, and the slaves' copies would differ.
    blocks: CommitBlock[];
  }>(
    // The sizes are summed before any block is read whole: the cut is made in the database.
    `WITH candidates AS (
       SELECT seq, octet_length(changes::text) AS size FROM lp_commitblocks WHERE seq > $1 ORDER BY seq LIMIT $2
     ), sized AS (
       SELECT seq, size, sum(size) OVER (ORDER BY seq) - size AS before FROM candidates
     ), picked AS (
       SELECT b.* FROM sized JOIN lp_commitblocks b USING (seq) WHERE sized.before = 0 OR sized.before + sized.size <= $3
     )
     SELECT (SELECT max(seq) FROM lp_commitblocks) AS newest, (SELECT min(seq) FROM lp_commitblocks) AS oldest,
            (SELECT checksum FROM lp_models WHERE current) AS model,
            (SELECT json_build_object('origin', origin, 'idempotencyKey', idempotency_key) FROM lp_commitblocks WHERE seq = $1) AS at_after,
            (SELECT coalesce(json_agg(json_build_object('seq', seq, 'modelChecksum', model_checksum, 'changes', changes, 'origin', origin,
                                                        'idempotencyKey', idempotency_key, 'committedAt', committed_at) ORDER BY seq), '[]')
               FROM picked) AS blocks`,
    [after, limit, MAX_ANSWER_BYTES],
    { prepared: 'lp_answer_blocks_after' },
  );
  const row = rows[0]!;
  return {
    blocks: row.blocks,
    masterSeq: Number(row.newest ?? 0),
    masterModel: row.model,
    oldestHeld: row.oldest === null ? null : Number(row.oldest),
    atAfter: row.at_after,
  };
}

/** A slave asked for blocks after `applied`: it has applied that far. */
export async function recordSlaveProgress(db: Database, slave: string, applied: number): Promise<void> {
  await db.query(
    `INSERT INTO lp_slave_progress (slave, applied_seq, seen_at) VALUES ($1, $2, now())
     ON CONFLICT (slave) DO UPDATE SET applied_seq = EXCLUDED.applied_seq, seen_at = now()`,
    [slave, applied],
  );
}

/** How often a slave's progress is written while it only moves forward. */
export const PROGRESS_EVERY_MS = 1_000;

/**
 * Slaves' progress for retention, written at most once a second per slave while it moves
 * forward: a long poll asks again for every commit it wakes up to, and each write is a
 * commit of its own (a WAL flush). A value held back is written when the second is up,
 * so an idle slave's last mark is not lost; late, it only keeps blocks a little longer.
 * A value that goes back (a slave restored from an older backup) is written at once:
 * retention must not prune what that slave still needs.
 */
export function slaveProgressRecorder(db: Database, onError: (err: unknown) => void) {
  const slaves = new Map<string, { written: number; at: number; held?: number; timer?: NodeJS.Timeout }>();
  const write = async (slave: string, applied: number) => {
    const entry = slaves.get(slave) ?? { written: applied, at: 0 };
    clearTimeout(entry.timer);
    slaves.set(slave, { written: applied, at: Date.now() });
    await recordSlaveProgress(db, slave, applied);
  };
  return {
    async record(slave: string, applied: number): Promise<void> {
      const entry = slaves.get(slave);
      if (!entry || applied < entry.written || Date.now() - entry.at >= PROGRESS_EVERY_MS) return write(slave, applied);
      if (applied === entry.written) return;
      entry.held = applied;
      entry.timer ??= setTimeout(
        () => {
          const held = slaves.get(slave)?.held;
          if (held !== undefined) write(slave, held).catch(onError);
        },
        PROGRESS_EVERY_MS - (Date.now() - entry.at),
      ).unref();
    },
    /** The API is closing: values still held back are dropped (retention keeps a little more until the next record). */
    stop(): void {
      for (const entry of slaves.values()) clearTimeout(entry.timer);
    },
  };
}

/**
 * Retention: drops the blocks every registered slave has applied and that are older than
 * `keepForMs` (never the keys they were saved with: lp_saved_keys keeps those for good). A slave the master has never heard from counts as having applied nothing,
 * so nothing is pruned before it first pulls. The age keeps a margin for the rest: a
 * master backup younger than it can always become a slave. The newest block is always kept: numbering continues
 * from it, and a slave made from a backup learns from it where the master stands.
 */
export async function pruneCommitblocks(db: Database, registeredSlaves: string[], keepForMs: number): Promise<{ pruned: number; upTo: number }> {
  const { rows } = await db.query<{ low: string | null }>(
    `SELECT min(coalesce(p.applied_seq, 0)) AS low
       FROM unnest($1::text[]) AS s(name) LEFT JOIN lp_slave_progress p ON p.slave = s.name`,
    [registeredSlaves],
  );
  // With no slave registered nobody needs the blocks, but a slave made later from a backup
  // would; keep everything until slaves are configured.
  const upTo = registeredSlaves.length === 0 ? 0 : Number(rows[0]?.low ?? 0);
  if (upTo <= 0) return { pruned: 0, upTo: 0 };
  const result = await db.query(
    `DELETE FROM lp_commitblocks
      WHERE seq <= $1 AND seq < (SELECT max(seq) FROM lp_commitblocks) AND committed_at < now() - make_interval(secs => $2)`,
    [upTo, keepForMs / 1000],
  );
  return { pruned: result.rowCount ?? 0, upTo };
}
