/**
 * The master's HTTP API, the only way a slave reaches the master (the slave always
 * starts the conversation; it never touches the master's database):
 *
 *   GET  /v1/blocks?after=n&limit=m&waitMs=w&applied=a&atOrigin=o&atKey=k
 *                                              blocks after n, in order; waits up to w ms for news; the
 *                                              slave has applied up to a (default n), which retention keeps;
 *                                              its block n was made by o under key k (checked)
 *   GET  /v1/models/:checksum                  a model the master has had, by checksum
 *   POST /v1/saves                             a save: applied with its commitblock in one transaction
 *   GET  /v1/health                            no credential needed
 *
 * Every other request needs HTTP Basic with a configured slave's name and credential.
 * Errors are JSON `{ error, message }`; `error` names the kind, so a slave decides by
 * field: ModelMismatch and InvalidChange (409, 422) are the caller's to fix,
 * BehindRetention, AheadOfMaster and Diverged (410, 409, 409) mean the slave must be rebuilt.
 *
 * Why HTTP rather than activities on a master task queue: replicated data would then
 * pass through workflow histories; here a slave's activity moves it straight from the
 * master's answer into the slave's database and only a summary reaches the history.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DatabaseError, type Database } from '../db/database';
import type { Logger } from '../logging';
import { describeIssues, saveSchema } from '../model/changeSchema';
import { InvalidChange } from '../model/objectChanges';
import { parseModel } from '../model/modelFile';
import type { Model } from '../shared/model';
import { answerBlocksAfter, ModelMismatch, saveOnMaster, slaveProgressRecorder } from './commitblocks';
import { authenticate } from './credentials';
import type { NewsFeed } from './newsFeed';
import type { MasterTls } from './tls';
import type { MetricMeter } from '@temporalio/common';
import { savesCommitted } from '../shared/metrics';
import { MAX_SAVE_BYTES, saveTooLarge } from '../shared/commitblock';

/** The longest a pull may wait for news, whatever the slave asks. */
const MAX_WAIT_MS = 30_000;
const MAX_BATCH = 5_000;

const blocksQuery = z.object({
  after: z.coerce.number().int().min(0),
  limit: z.coerce.number().int().min(1).max(MAX_BATCH).default(500),
  waitMs: z.coerce.number().int().min(0).default(0),
  /** What the slave has committed; lower than `after` while it applies a batch and fetches the next. */
  applied: z.coerce.number().int().min(0).optional(),
  /** Who made the slave's block `after`, to check it is the master's block `after`. */
  atOrigin: z.string().min(1).optional(),
  atKey: z.string().min(1).optional(),
});

export interface MasterApiOptions {
  db: Database;
  news: NewsFeed;
  /** slave name -> credential */
  credentials: Map<string, string>;
  log: Logger;
  /** Where `lessonplan_saves` is counted (the worker's Prometheus endpoint); none: not counted. */
  meter?: MetricMeter;
  /** The master's certificate and key: the API serves HTTPS only. None: plain HTTP. */
  tls?: MasterTls;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

export function buildMasterApi({ db, news, credentials, log, meter, tls }: MasterApiOptions): FastifyInstance {
  const saves = meter ? savesCommitted(meter) : undefined;
  // The body holds the changes and a small envelope; the changes themselves are checked against MAX_SAVE_BYTES below.
  const app = Fastify({ bodyLimit: MAX_SAVE_BYTES + 64 * 1024, logger: false, https: tls ?? null });
  const slaveOf = new WeakMap<object, string>();
  const progress = slaveProgressRecorder(db, (err) =>
    log.warn({ err: (err as Error).message }, "could not record a slave's progress; retention waits for the next"),
  );
  app.addHook('onClose', async () => progress.stop());

  app.addHook('onRequest', async (request) => {
    if (request.url === '/v1/health') return;
    const slave = authenticate(request.headers.authorization, credentials);
    if (!slave) throw new ApiError(401, 'Unauthorized', 'a configured slave name and its credential are required (HTTP Basic)');
    slaveOf.set(request, slave);
  });

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof ApiError) return reply.status(err.status).send({ error: err.kind, message: err.message });
    if (err instanceof ModelMismatch) return reply.status(409).send({ error: 'ModelMismatch', message: err.message });
    if (err instanceof InvalidChange) return reply.status(422).send({ error: 'InvalidChange', message: err.message });
    // Values PostgreSQL refuses (a word for an integer, a key twice): the save's fault, not the master's.
    if (err instanceof DatabaseError && /^(22|23)/.test(err.code ?? '')) {
      return reply
        .status(422)
        .send({ error: 'InvalidChange', message: `the master's database refused the changes: ${(err.cause as Error).message}` });
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 413) {
      return reply.status(413).send({
        error: 'SaveTooLarge',
        message: `a save carries at most ${MAX_SAVE_BYTES >> 20} MiB of changes; this request is larger: split it into smaller saves`,
      });
    }
    if (status && status < 500) return reply.status(status).send({ error: 'BadRequest', message: (err as Error).message });
    log.error({ err, url: request.url }, 'the master API failed a request');
    return reply.status(500).send({ error: 'MasterError', message: `the master failed: ${(err as Error).message}` });
  });

  app.get('/v1/health', async () => ({ ok: true }));

  app.get('/v1/blocks', async (request) => {
    const parsed = blocksQuery.safeParse(request.query);
    if (!parsed.success) throw new ApiError(400, 'BadRequest', describeIssues(parsed.error));
    const { after, limit, atOrigin, atKey } = parsed.data;
    const slave = slaveOf.get(request)!;
    // A prefetch asks after blocks not yet applied; what must still be held starts after `applied`.
    const applied = Math.min(parsed.data.applied ?? after, after);
    const deadline = Date.now() + Math.min(parsed.data.waitMs, MAX_WAIT_MS);
    for (let first = true; ; first = false) {
      // Listen before looking, so a commit between the look and the wait still wakes us; look
      // again at least every second in case the news connection missed one.
      const woke = news.next(Math.max(0, Math.min(1_000, deadline - Date.now())));
      const answer = await answerBlocksAfter(db, after, limit);
      const ours = answer.atAfter;
      if (first && atOrigin !== undefined && atKey !== undefined && ours && (ours.origin !== atOrigin || ours.idempotencyKey !== atKey)) {
        // The slave's block `after` must be the master's block `after`: a master restored from an
        // older backup that took other saves since would otherwise have the slave skip them.
        throw new ApiError(
          409,
          'Diverged',
          `slave ${slave}'s block ${after} (${atOrigin}/${atKey}) is not the master's block ${after} (${ours.origin}/${ours.idempotencyKey}): the master was restored from an older backup and took other saves since; rebuild this slave from a backup of the master`,
        );
      }
      if (answer.oldestHeld !== null && applied < answer.oldestHeld - 1) {
        throw new ApiError(
          410,
          'BehindRetention',
          `slave ${slave} has applied up to block ${applied}, but the master holds blocks only from ${answer.oldestHeld} on (older ones were pruned); rebuild this slave from a recent master backup`,
        );
      }
      if (after > answer.masterSeq) {
        throw new ApiError(
          409,
          'AheadOfMaster',
          `slave ${slave} has applied up to block ${after}, but the master's newest block is ${answer.masterSeq}: was the master restored from an older backup? rebuild this slave from a backup of the master`,
        );
      }
      if (first) await progress.record(slave, applied);
      // A stopping master answers now: the slave asks again, of it once restarted.
      if (answer.blocks.length > 0 || Date.now() >= deadline || news.closed) {
        const { oldestHeld: _held, atAfter: _at, ...delivered } = answer;
        return delivered;
      }
      await woke;
    }
  });

  app.get<{ Params: { checksum: string } }>('/v1/models/:checksum', async (request) => {
    const { rows } = await db.query<{ model: Model }>('SELECT model FROM lp_models WHERE checksum = $1', [request.params.checksum]);
    if (!rows[0]) throw new ApiError(404, 'UnknownModel', `the master has no model with checksum ${request.params.checksum}`);
    return { checksum: request.params.checksum, model: parseModel(rows[0].model, `model ${request.params.checksum.slice(0, 12)}`) };
  });

  app.post('/v1/saves', async (request) => {
    // A value nested arbitrarily deep gets this far safely: V8's JSON.parse (under Fastify's
    // secure-json-parse, whose prototype scan is a loop too) does not recurse, and the schema
    // checks only the shape around values. applyObjectChanges checks every value against its
    // attribute's type, and bounds jsonb nesting, before anything recursive touches it: 422.
    const parsed = saveSchema.safeParse(request.body);
    if (!parsed.success) throw new ApiError(422, 'InvalidSave', describeIssues(parsed.error));
    const tooLarge = saveTooLarge(parsed.data.changes);
    if (tooLarge) throw new ApiError(413, 'SaveTooLarge', tooLarge);
    // The origin is who authenticated, not what the body claims.
    const origin = slaveOf.get(request)!;
    const answer = await saveOnMaster(db, { ...parsed.data, origin });
    if (!answer.duplicate) saves?.add(1, { origin });
    return answer;
  });

  return app;
}
