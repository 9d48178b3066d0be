/** Operator actions on slaves: start (or find) a slave's slaveSync, and save through it. */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApplicationFailure,
  isGrpcServiceError,
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { ClusterConfig } from '../config/schema';
import { saveTooLarge } from '../shared/commitblock';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import { SAVE_AGAIN_HINT, type SlaveSaveInput, type SlaveSaveResult, type SlaveSyncInput } from '../shared/slaveSync';

export class UnknownSlaveError extends Error {
  override readonly name = 'UnknownSlaveError';
}

export function slaveSyncInput(config: ClusterConfig, slave: string): SlaveSyncInput {
  if (!config.slaves.some((s) => s.name === slave)) {
    throw new UnknownSlaveError(`no slave named "${slave}" in the config; configured: ${config.slaves.map((s) => s.name).join(', ') || '(none)'}`);
  }
  return {
    slave,
    pollIntervalMs: config.timings.slavePollInterval,
    saveTimeoutMs: config.timings.saveTimeout,
    ...(config.alerts
      ? {
          alerts: {
            cluster: config.cluster,
            unreachableAfterMs: config.alerts.slaveUnreachableAfter,
            lagAboveBlocks: config.alerts.lagAboveBlocks,
            lagAboveSeconds: config.alerts.lagAboveSeconds / 1000,
          },
        }
      : {}),
  };
}

/** Starts the slave's slaveSync, or returns the one already running (one per slave, ever). */
export async function startSlaveSync(client: Client, config: ClusterConfig, slave: string): Promise<WorkflowHandle> {
  return client.workflow.start('slaveSync', {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: workflowIds.slaveSync(slave),
    args: [slaveSyncInput(config, slave)],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [{ key: searchAttributes.cluster, value: config.cluster }],
  });
}

/**
 * What a caller of saveThroughSlave may wait beyond the save timeout, for the answer's own
 * travel: the slave gets half of it to send its answer (its save activity alone may take
 * the whole timeout), the other half is slack for this process to hand the answer over.
 */
export const SAVE_ANSWER_MARGIN_MS = 1_000;
/** The config's default `timings.saveTimeout`, for callers that do not pass theirs. */
const DEFAULT_SAVE_TIMEOUT_MS = 10_000;
/** The longest pause between tries; each pause is jittered so waiting saves do not come back at once. */
const MAX_PAUSE_MS = 400;
/** Requests one `within` may make (each adds an abort listener), before Node warns of a leak. */
const MAX_REQUESTS_WITHIN = 1_000;
/** gRPC's RESOURCE_EXHAUSTED: how Temporal refuses an update past the in-flight limit of one workflow (10). */
const GRPC_RESOURCE_EXHAUSTED = 8;

/** No answer came within the save timeout: the save may or may not have been made. */
export class SaveNotAnsweredError extends Error {
  override readonly name = 'SaveNotAnsweredError';
  constructor(
    readonly slave: string,
    readonly idempotencyKey: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(
      `the save through slave ${slave} failed to answer: no answer within ${timeoutMs} ms (idempotency key "${idempotencyKey}"); ` +
        'it may or may not have been made. Reads on this slave go on; saving again with the same idempotency key is safe: ' +
        "the master keeps each key once and answers a second save with the first one's block",
      options,
    );
  }
}

/** A try ran out of its time (ours, not the server's answer). */
class OutOfTime extends Error {
  override readonly name = 'OutOfTime';
}

/**
 * A save through a slave, answered once the slave has applied it (read-your-writes), within
 * `timeoutMs` (the config's `timings.saveTimeout`) plus SAVE_ANSWER_MARGIN_MS: with the
 * block it made, with the slave's refusal (thrown as the update's failure), or with
 * SaveNotAnsweredError. Within that time, a save turned away for a moment is sent again
 * after a short jittered pause: while slaveSync starts its next run (continue-as-new), sent
 * to the run that just ended, or past the workflow's in-flight update limit. That last one
 * the client's connection retries first, with its own growing pauses (from 1 s), before the
 * error reaches here; the deadline ends those retries too.
 */
/** A save over MAX_SAVE_BYTES: refused before it is sent, with both sizes. */
export class SaveTooLargeError extends Error {
  override readonly name = 'SaveTooLargeError';
}

export async function saveThroughSlave(
  client: Client,
  slave: string,
  save: SlaveSaveInput,
  timeoutMs = DEFAULT_SAVE_TIMEOUT_MS,
): Promise<SlaveSaveResult> {
  // Refused here, before it travels: the update would carry it into slaveSync's history, which takes no more.
  const tooLarge = saveTooLarge(save.changes);
  if (tooLarge) throw new SaveTooLargeError(tooLarge);
  const deadline = Date.now() + timeoutMs + SAVE_ANSWER_MARGIN_MS / 2;
  // Without a run id the handle reaches the newest run, so a try after continue-as-new finds it.
  const handle = client.workflow.getHandle(workflowIds.slaveSync(slave));
  // One id for every try: a try sent again joins the update the server already holds.
  const updateId = randomUUID();
  const notAnswered = (cause?: unknown) => new SaveNotAnsweredError(slave, save.idempotencyKey, timeoutMs, { cause });
  for (let attempt = 1; ; attempt++) {
    try {
      return await within(client, deadline, () => handle.executeUpdate<SlaveSaveResult, [SlaveSaveInput]>('save', { args: [save], updateId }));
    } catch (err) {
      if (!isUnanswered(err) && !(await isWorthRetrying(client, handle, err, deadline))) throw err;
      if (!(await pause(attempt, deadline))) throw notAnswered(err);
    }
  }
}

/**
 * Runs `call` until `until` at the latest. Past it, its requests are cancelled (abort signal)
 * and none is sent again (gRPC deadline, which also ends the connection's own retries); the
 * answer does not wait for them: the connection may hold a retry until its pause ends.
 */
async function within<T>(client: Client, until: number, call: () => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(Math.max(0, until - Date.now()));
  // The connection adds a listener per request made within and never removes it (polls for an
  // update's outcome make several); the signal lives no longer than this call.
  setMaxListeners(MAX_REQUESTS_WITHIN, signal);
  const running = client.connection.withDeadline(until, () => client.withAbortSignal(signal, call));
  const outOfTime = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new OutOfTime()), { once: true }));
  // Whichever loses the race settles unobserved later; neither is an unhandled rejection.
  running.catch(() => undefined);
  outOfTime.catch(() => undefined);
  return Promise.race([running, outOfTime]);
}

/** The try ended without the slave's answer: cut by our own time, or by the cancel it made. */
function isUnanswered(err: unknown): boolean {
  return err instanceof OutOfTime || err instanceof WorkflowUpdateRPCTimeoutOrCancelledError;
}

/** Refusals that pass by themselves: the in-flight limit, continue-as-new. Anything else is the answer. */
async function isWorthRetrying(client: Client, handle: WorkflowHandle, err: unknown, deadline: number): Promise<boolean> {
  if (err instanceof ServiceError && isGrpcServiceError(err.cause) && err.cause.code === GRPC_RESOURCE_EXHAUSTED) return true;
  // The run the update reached has just ended; worth another try only while a newer one runs.
  if (err instanceof WorkflowNotFoundError) return isRunning(client, handle, deadline);
  // The validator's refusal carries no type of its own (a plain Error in the workflow, which
  // is pinned by recorded histories): its message is all there is to tell it by.
  return err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.message.endsWith(SAVE_AGAIN_HINT);
}

async function isRunning(client: Client, handle: WorkflowHandle, deadline: number): Promise<boolean> {
  try {
    return (await within(client, deadline, () => handle.describe())).status.name === 'RUNNING';
  } catch {
    return false;
  }
}

/** A short jittered pause before the next try; false when the next try would start past the deadline. */
async function pause(attempt: number, deadline: number): Promise<boolean> {
  const ceiling = Math.min(MAX_PAUSE_MS, 50 * 2 ** attempt);
  const ms = ceiling / 2 + Math.random() * (ceiling / 2);
  if (Date.now() + ms >= deadline) return false;
  await sleep(ms);
  return true;
}
