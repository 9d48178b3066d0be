/**
 * slaveSync: one slave keeps up with the master (seed: "the Slave continuously poll the
 * Master for changes"). Workflow id `slave-sync/<slave>`, one per slave, running for as
 * long as the slave exists.
 *
 * Each pass is one activity on the slave's own queue: pull the blocks after the slave's
 * high-water mark (read from its commitblock table), evolve the schema first when a
 * block is made under a model the slave is not at, apply, and, when there is no news,
 * wait on the master for up to the poll interval. The blocks never pass through this
 * workflow's history, only a summary.
 *
 * The master unreachable: the pass fails, `status` says since when, and the loop tries
 * again with a growing pause; reads on the slave go on, and it catches up by itself
 * when the master is back. A failure waiting cannot fix (the slave behind what the
 * master still holds, a gap) halts until an operator acts and sends `resume`.
 *
 * Saves through the slave (`save` update) go to the master and are answered once the
 * block is applied here too (read-your-writes).
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { SlaveActivities } from '../activities/slave';
import { slaveTaskQueue } from '../shared/names';
import {
  SAVE_AGAIN_HINT,
  SLAVE_HALT_KINDS,
  type SlaveHalt,
  type SlaveSaveInput,
  type SlaveSaveResult,
  type SlaveSyncInput,
  type SlaveSyncResult,
  type SlaveSyncStatus,
} from '../shared/slaveSync';
import { operatorMessage } from './failures';

export const slaveStatusQuery = defineQuery<SlaveSyncStatus>('status');
export const newsSignal = defineSignal('news');
export const slavePauseSignal = defineSignal('pause');
export const slaveResumeSignal = defineSignal('resume');
export const saveUpdate = defineUpdate<SlaveSaveResult, [SlaveSaveInput]>('save');

/** The longest pause between attempts while the master does not answer. */
const MAX_RETRY_PAUSE_MS = 30_000;
/** Passes per run before continue-as-new: about 10 history events each, well below the limits. */
const PASSES_PER_RUN = 1_000;
/** A pass returns after this long even while blocks keep coming, so status stays fresh. */
const PASS_BUDGET_MS = 10_000;

export async function slaveSync(input: SlaveSyncInput): Promise<void> {
  const { slave, pollIntervalMs, saveTimeoutMs, passesPerRun = PASSES_PER_RUN } = input;
  const taskQueue = slaveTaskQueue(slave);
  // One attempt per pass: the loop below is the retry, so every failure shows in status.
  const sync = proxyActivities<SlaveActivities>({
    taskQueue,
    startToCloseTimeout: pollIntervalMs + PASS_BUDGET_MS + 60_000,
    scheduleToCloseTimeout: pollIntervalMs + PASS_BUDGET_MS + 120_000,
    heartbeatTimeout: '10s',
    retry: { maximumAttempts: 1 },
  });
  const save = proxyActivities<SlaveActivities>({
    taskQueue,
    // A save fails within the configured time, however far it got (the slave's worker gone included).
    scheduleToCloseTimeout: saveTimeoutMs,
    retry: { maximumAttempts: 1 },
  });

  const carried = input.carried;
  const status: SlaveSyncStatus = {
    slave,
    state: 'starting',
    highWaterMark: carried?.highWaterMark ?? null,
    masterSeq: carried?.masterSeq ?? null,
    lagBlocks: null,
    lagSeconds: null,
    modelChecksum: carried?.modelChecksum ?? null,
    masterUnreachableSince: carried?.masterUnreachableSince ?? null,
    lastError: carried?.lastError ?? null,
    halt: carried?.halt ?? null,
    paused: carried?.paused ?? false,
    appliedBlocks: carried?.appliedBlocks ?? 0,
    evolvedModels: carried?.evolvedModels ?? 0,
    lastSyncAt: null,
  };
  let news = false;
  let resumed = false;
  let draining = false;

  setHandler(slaveStatusQuery, () => status);
  setHandler(newsSignal, () => {
    news = true;
  });
  setHandler(slavePauseSignal, () => {
    status.paused = true;
  });
  setHandler(slaveResumeSignal, () => {
    status.paused = false;
    resumed = true;
  });
  setHandler(
    saveUpdate,
    async (request) => {
      try {
        const result = await save.routeSaveToMaster({ ...request, timeoutMs: saveTimeoutMs });
        status.highWaterMark = Math.max(status.highWaterMark ?? 0, result.highWaterMark);
        news = true;
        return result;
      } catch (err) {
        const kind = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause.type : undefined;
        // Made on the master, only not yet visible here: not a failed save.
        if (kind === 'SaveNotYetApplied') throw ApplicationFailure.nonRetryable(operatorMessage(err), kind);
        const reason = kind ? operatorMessage(err) : `no answer within ${saveTimeoutMs} ms (${operatorMessage(err)})`;
        throw ApplicationFailure.nonRetryable(
          `the save through slave ${slave} failed: ${reason}. Reads on this slave go on; saving again with the same idempotency key is safe`,
          kind ?? 'SaveTimedOut',
        );
      }
    },
    {
      validator: (request) => {
        if (!request || !Array.isArray(request.changes) || request.changes.length === 0) throw new Error('a save needs at least one change');
        if (typeof request.idempotencyKey !== 'string' || request.idempotencyKey.length === 0) throw new Error('a save needs an idempotencyKey');
        if (status.halt) throw new Error(`slave ${slave} is halted (${status.halt.reason}); saves through it are refused until it is fixed`);
        // Continue-as-new waits for running saves; new ones would keep it waiting under a steady stream.
        if (draining) throw new Error(`slave ${slave}'s sync is starting its next run; ${SAVE_AGAIN_HINT}`);
        // A save applies blocks on this slave before it answers: a paused slave is not to be written.
        if (status.paused) throw new Error(`slave ${slave} is paused; saves through it are refused until it is resumed`);
      },
    },
  );

  const record = (result: SlaveSyncResult) => {
    status.highWaterMark = result.highWaterMark;
    status.masterSeq = result.masterSeq;
    status.lagBlocks = result.lagBlocks;
    status.lagSeconds = result.lagSeconds;
    status.modelChecksum = result.modelChecksum;
    status.appliedBlocks += result.applied;
    status.evolvedModels += result.evolved.length;
    status.masterUnreachableSince = null;
    status.lastError = null;
    status.lastSyncAt = new Date().toISOString();
    status.state = result.lagBlocks === 0 ? 'caught-up' : 'syncing';
  };

  let retryPause = pollIntervalMs;
  for (let pass = 0; pass < passesPerRun && !workflowInfo().continueAsNewSuggested; pass++) {
    if (status.halt) {
      status.state = 'halted';
      resumed = false;
      await condition(() => resumed);
      status.halt = null;
    }
    if (status.paused) {
      status.state = 'paused';
      await condition(() => !status.paused);
    }
    try {
      const waitMs = news ? 0 : pollIntervalMs;
      news = false;
      record(await sync.pullAndApplyCommitblocks({ waitMs, budgetMs: PASS_BUDGET_MS }));
      retryPause = pollIntervalMs;
    } catch (err) {
      const kind = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause.type : undefined;
      status.lastError = operatorMessage(err);
      if (kind && SLAVE_HALT_KINDS.includes(kind)) {
        status.halt = {
          kind,
          reason: status.lastError,
          since: new Date().toISOString(),
          resumeWith: `temporal workflow signal --workflow-id ${workflowInfo().workflowId} --name resume`,
        } satisfies SlaveHalt;
        continue;
      }
      if (kind === 'MasterUnreachable') status.masterUnreachableSince ??= new Date().toISOString();
      status.state = kind === 'MasterUnreachable' ? 'master-unreachable' : 'syncing';
      // Wait, growing the pause, unless news, a pause or a resume comes first.
      await condition(() => news || status.paused || resumed, retryPause);
      resumed = false;
      retryPause = Math.min(retryPause * 2, MAX_RETRY_PAUSE_MS);
    }
  }

  // Saves in flight finish in this run; the next run starts with a small history.
  draining = true;
  await condition(allHandlersFinished);
  await continueAsNew<typeof slaveSync>({
    slave,
    pollIntervalMs,
    saveTimeoutMs,
    passesPerRun,
    carried: {
      paused: status.paused,
      masterUnreachableSince: status.masterUnreachableSince,
      lastError: status.lastError,
      halt: status.halt,
      appliedBlocks: status.appliedBlocks,
      evolvedModels: status.evolvedModels,
      highWaterMark: status.highWaterMark,
      masterSeq: status.masterSeq,
      modelChecksum: status.modelChecksum,
    },
  });
}
