/**
 * The slave's save endpoint, served by the slave's own worker on a loopback port
 * (`slaves[].saveEndpoint`): the application on the slave's host saves here, the save
 * goes to the master, and the answer comes once the save's block is applied on this
 * slave, so the application reads its own write here at once.
 *
 *   POST /v1/saves   { idempotencyKey, changes, modelChecksum? }  (HTTP Bearer token)
 *                    200 { seq, duplicate, highWaterMark }
 *   GET  /v1/health  no token needed
 *
 * No Temporal on the way: a save waits for no workflow task. The running follow of the
 * master (slaveSync's `followMaster`, in this process) applies the block and wakes the
 * save. That a follow runs is also the slave's permission to take saves: a paused or
 * halted slave, or one whose slaveSync is not running, refuses them (503), as the
 * `save` update does. Errors are JSON `{ error, message }`, `error` naming the kind.
 * A save whose answer is lost is safe to send again with the same idempotency key.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { ClusterConfig, SlaveConfig } from '../config/schema';
import type { Database } from '../db/database';
import type { Logger } from '../logging';
import { describeIssues, saveFileSchema } from '../model/changeSchema';
import { currentModel } from '../model/deploy';
import { MAX_SAVE_BYTES, saveTooLarge } from '../shared/commitblock';
import type { AppliedMark } from '../activities/slave/appliedMark';
import { MasterCallError, type MasterClient } from '../activities/slave/masterClient';
import { bearerMatches, saveEndpointToken } from '../master/credentials';

export interface SaveEndpointOptions {
  slave: string;
  db: Database;
  master: MasterClient;
  mark: AppliedMark;
  token: string;
  /** A save answers within this (the config's timings.saveTimeout), or fails saying how far it got. */
  saveTimeoutMs: number;
  log: Logger;
}

/** Answer code per kind the master refuses with; anything else it refuses is 409. */
const REFUSED_STATUS: Record<string, number> = { InvalidSave: 422, InvalidChange: 422, SaveTooLarge: 413, ModelMismatch: 409 };

class Refused extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

export function buildSaveEndpoint({ slave, db, master, mark, token, saveTimeoutMs, log }: SaveEndpointOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: MAX_SAVE_BYTES + 64 * 1024, logger: false });

  app.addHook('onRequest', async (request) => {
    if (request.url === '/v1/health') return;
    if (!bearerMatches(request.headers.authorization, token)) {
      throw new Refused(401, 'Unauthorized', `slave ${slave}'s save endpoint needs its token (HTTP Bearer)`);
    }
  });

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof Refused) return reply.status(err.status).send({ error: err.kind, message: err.message });
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 413) {
      return reply.status(413).send({ error: 'SaveTooLarge', message: `a save carries at most ${MAX_SAVE_BYTES >> 20} MiB of changes: split it` });
    }
    if (status && status < 500) return reply.status(status).send({ error: 'BadRequest', message: (err as Error).message });
    log.error({ err, url: request.url }, 'the save endpoint failed a request');
    return reply.status(500).send({ error: 'SlaveError', message: `slave ${slave} failed: ${(err as Error).message}` });
  });

  app.get('/v1/health', async () => ({ ok: true, following: mark.isFollowing, highWaterMark: mark.highWaterMark }));

  app.post('/v1/saves', async (request) => {
    const started = Date.now();
    const parsed = saveFileSchema.required({ idempotencyKey: true }).safeParse(request.body);
    if (!parsed.success) throw new Refused(422, 'InvalidSave', describeIssues(parsed.error));
    const tooLarge = saveTooLarge(parsed.data.changes);
    if (tooLarge) throw new Refused(413, 'SaveTooLarge', tooLarge);
    if (!mark.isFollowing) {
      throw new Refused(
        503,
        'SlaveNotFollowing',
        `slave ${slave} is not following the master now (paused, halted, its master unreachable, or its slaveSync not running): saves through it are refused; lessonplan slave status says why`,
      );
    }
    const modelChecksum = parsed.data.modelChecksum ?? (await currentModel(db))?.checksum;
    if (!modelChecksum) throw new Refused(409, 'NoModel', `slave ${slave} has no model yet: deploy a model to the master first`);
    let answer;
    try {
      answer = await master.save(
        { modelChecksum, changes: parsed.data.changes, idempotencyKey: parsed.data.idempotencyKey },
        { timeoutMs: saveTimeoutMs },
      );
    } catch (err) {
      if (!(err instanceof MasterCallError)) throw err;
      // Not answered: it may or may not have been made; the same key again is safe.
      if (err.retryable) throw new Refused(503, err.kind, `${err.message}; saving again with the same idempotency key is safe`);
      throw new Refused(REFUSED_STATUS[err.kind] ?? 409, err.kind, err.message);
    }
    const left = Math.max(0, saveTimeoutMs - (Date.now() - started));
    if (!(await mark.reached(answer.seq, left))) {
      throw new Refused(
        504,
        'SaveNotYetApplied',
        `the save was made (block ${answer.seq} on the master), but slave ${slave} has applied only up to block ${mark.highWaterMark} within ${saveTimeoutMs} ms; it arrives here with the follow`,
      );
    }
    return { seq: answer.seq, duplicate: answer.duplicate, highWaterMark: mark.highWaterMark };
  });

  return app;
}

/** Serves the endpoint of `slave` as its config says; the token from its env variable or credentials file. */
export async function startSaveEndpoint(
  config: ClusterConfig,
  slave: SlaveConfig,
  deps: Pick<SaveEndpointOptions, 'db' | 'master' | 'mark' | 'log'>,
): Promise<{ url: string; close(): Promise<void> }> {
  const where = slave.saveEndpoint!;
  const app = buildSaveEndpoint({
    ...deps,
    slave: slave.name,
    token: saveEndpointToken(config, slave),
    saveTimeoutMs: config.timings.saveTimeout,
  });
  await app.listen({ host: where.host, port: where.port });
  const url = `http://${where.host.includes(':') ? `[${where.host}]` : where.host}:${where.port}`;
  deps.log.info({ slave: slave.name, url }, 'save endpoint listening');
  return { url, close: () => app.close() };
}
