/**
 * slaveSync: one slave keeps up with the master (seed: "the Slave continuously poll the
 * Master for changes"). Workflow id `slave-sync/<slave>`, one per slave, running for as
 * long as the slave exists.
 *
 * Each pass is one long activity on the slave's own queue, `followMaster`: it long-polls
 * the master, pulls the blocks after the slave's high-water mark (read from its
 * commitblock table), evolves the schema first when a block is made under a model the
 * slave is not at, applies, and goes on, heartbeating its mark, so no commit waits for a
 * workflow task to be pulled. It reports back when there is something to decide or show:
 * caught up or behind, a schema evolved, a failure, or every `reportEveryMs` anyway; a
 * pause cancels it. The blocks never pass through this workflow's history, only a summary.
 * (Runs started before this kept one short pull per pass; `patched('follow-master')`.)
 *
 * The master unreachable: the pass fails, `status` says since when, and the loop tries
 * again with a growing pause; reads on the slave go on, and it catches up by itself
 * when the master is back. A failure waiting cannot fix (the slave behind what the
 * master still holds, a gap) halts until an operator acts and sends `resume`.
 *
 * Saves through the slave (`save` update) go to the master and are answered once the
 * block is applied here too (read-your-writes).
 *
 * With alerts configured, a halt, a master unreachable past the threshold, and lag past
 * the threshold each send one alert per episode (an episode ends when the master
 * answers again, or the lag falls back under the threshold).
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  log,
  metricMeter,
  patched,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { AlertActivities } from '../activities/common/alerts';
import type { SlaveActivities } from '../activities/slave';
import type { Alert } from '../shared/alert';
import { slaveLagBlocks, slaveLagSeconds } from '../shared/metrics';
import { slaveTaskQueue } from '../shared/names';
import {
  SAVE_AGAIN_HINT,
  SLAVE_HALT_KINDS,
  type SlaveAlertState,
  type SlaveHalt,
  type SlaveSaveInput,
  type SlaveSaveResult,
  type SlaveSyncInput,
  type SlaveSyncResult,
  type SlaveSyncStatus,
} from '../shared/slaveSync';
import { saveTooLarge } from '../shared/commitblock';
import { operatorMessage } from './failures';

export const slaveStatusQuery = defineQuery<SlaveSyncStatus>('status');
export const newsSignal = defineSignal('news');
export const slavePauseSignal = defineSignal('pause');
export const slaveResumeSignal = defineSignal('resume');
export const saveUpdate = defineUpdate<SlaveSaveResult, [SlaveSaveInput]>('save');

/** The longest pause between attempts while the master does not answer. */
const MAX_RETRY_PAUSE_MS = 30_000;
/**
 * A master that answers with the same failure this many passes in a row (about two
 * minutes with the growing pause) will not get better by asking again: the slave halts
 * and says why, instead of asking the same thing forever.
 */
const SAME_FAILURES_BEFORE_HALT = 8;
/** Patch: the halt on a master that keeps failing the same way. */
const HALT_ON_A_FAILING_MASTER = 'halt-on-a-failing-master';
/** Passes per run before continue-as-new: about 10 history events each, well below the limits. */
const PASSES_PER_RUN = 1_000;
/** A pass returns after this long even while blocks keep coming, so status stays fresh. */
const PASS_BUDGET_MS = 10_000;
/** Patch: one long follow of the master per pass (followMaster) instead of one pull (pullAndApplyCommitblocks). */
const FOLLOW_MASTER = 'follow-master';
/** How often a long follow reports to the workflow while nothing changes. */
const REPORT_EVERY_MS = 30_000;

export async function slaveSync(input: SlaveSyncInput): Promise<void> {
  const { slave, pollIntervalMs, saveTimeoutMs, passesPerRun = PASSES_PER_RUN, reportEveryMs = REPORT_EVERY_MS, alerts } = input;
  const taskQueue = slaveTaskQueue(slave);
  // One attempt per pass: the loop below is the retry, so every failure shows in status.
  const sync = proxyActivities<SlaveActivities>({
    taskQueue,
    startToCloseTimeout: pollIntervalMs + PASS_BUDGET_MS + 60_000,
    scheduleToCloseTimeout: pollIntervalMs + PASS_BUDGET_MS + 120_000,
    heartbeatTimeout: '10s',
    retry: { maximumAttempts: 1 },
  });
  // The long follow: it heartbeats every second, and a pause waits until it has really stopped applying.
  const follower = proxyActivities<SlaveActivities>({
    taskQueue,
    startToCloseTimeout: reportEveryMs + pollIntervalMs + PASS_BUDGET_MS + 60_000,
    heartbeatTimeout: '5s',
    retry: { maximumAttempts: 1 },
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
  const save = proxyActivities<SlaveActivities>({
    taskQueue,
    // A save fails within the configured time, however far it got (the slave's worker gone included).
    scheduleToCloseTimeout: saveTimeoutMs,
    retry: { maximumAttempts: 1 },
  });

  // Alerts go out beside the loop: a slow webhook must not hold up replication.
  const alerter = proxyActivities<AlertActivities>({
    taskQueue,
    startToCloseTimeout: '1m',
    scheduleToCloseTimeout: '30m',
    retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', nonRetryableErrorTypes: ['AlertMisconfigured'] },
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
  // Gauges for Prometheus (not emitted while a history is replayed).
  const lagBlocksGauge = slaveLagBlocks(metricMeter).withTags({ slave });
  const lagSecondsGauge = slaveLagSeconds(metricMeter).withTags({ slave });
  let news = false;
  let resumed = false;
  let draining = false;
  const alerted: SlaveAlertState = { unreachable: false, lagging: false, ...carried?.alerted };
  const alertsInFlight: Promise<void>[] = [];
  const { workflowId } = workflowInfo();

  const raise = (kind: Alert['kind'], episode: string, summary: string, reason: string, resumeCommand?: string) => {
    if (!alerts) return;
    const alert: Alert = {
      key: `${workflowId}/${kind}/${episode}`,
      kind,
      cluster: alerts.cluster,
      workflowId,
      summary: `${alerts.cluster}: ${summary}`,
      reason,
      ...(resumeCommand ? { resumeCommand } : {}),
      at: new Date().toISOString(),
    };
    alertsInFlight.push(
      alerter.sendAlert(alert).then(
        () => undefined,
        (err) => {
          status.lastError = `the ${kind} alert was not delivered: ${operatorMessage(err)}`;
        },
      ),
    );
  };
  /** After each pass: lag past the threshold starts an episode (one alert); back under it ends it. */
  const watchLag = () => {
    if (!alerts) return;
    const behind = (status.lagBlocks ?? 0) > alerts.lagAboveBlocks || (status.lagSeconds ?? 0) > alerts.lagAboveSeconds;
    if (behind && !alerted.lagging) {
      alerted.lagging = true;
      raise(
        'slave-lagging',
        status.lastSyncAt ?? '',
        `slave ${slave} is ${status.lagBlocks} blocks and ${status.lagSeconds ?? 0} s behind the master`,
        `thresholds: ${alerts.lagAboveBlocks} blocks, ${alerts.lagAboveSeconds} s; it applied up to block ${status.highWaterMark}, the master is at ${status.masterSeq}`,
      );
    }
    if (!behind) alerted.lagging = false;
  };
  /** While the master does not answer: one alert once it has been silent past the threshold. */
  const watchUnreachable = () => {
    if (!alerts || alerted.unreachable || !status.masterUnreachableSince) return;
    const silentMs = Date.now() - Date.parse(status.masterUnreachableSince);
    if (silentMs < alerts.unreachableAfterMs) return;
    alerted.unreachable = true;
    raise(
      'slave-master-unreachable',
      status.masterUnreachableSince,
      `slave ${slave} has not reached the master since ${status.masterUnreachableSince} (${Math.round(silentMs / 1000)} s); reads on it go on, saves through it fail`,
      status.lastError ?? 'no answer',
    );
  };

  /** Blocks applied and schema evolved on this slave, by a pass or by a save's catch-up. */
  const count = (applied: number, evolved: SlaveSyncResult['evolved']) => {
    for (const e of evolved) log.info(`evolved the schema from model ${e.from ?? 'none'} to ${e.to}: ${e.changes.join('; ') || 'no table changes'}`);
    status.appliedBlocks += applied;
    status.evolvedModels += evolved.length;
  };

  // Descriptions are what the Temporal UI shows beside each name in its signal, update and query lists.
  setHandler(slaveStatusQuery, () => status, { description: 'State, high-water mark, lag, model, since when the master is unreachable' });
  setHandler(
    newsSignal,
    () => {
      news = true;
    },
    { description: 'The master has new blocks: pull now instead of at the next poll' },
  );
  setHandler(
    slavePauseSignal,
    () => {
      status.paused = true;
    },
    { description: 'Stop pulling (saves through this slave are refused until resume)' },
  );
  setHandler(
    slaveResumeSignal,
    () => {
      status.paused = false;
      resumed = true;
    },
    { description: 'Go on after a pause, or after the fix of a halt' },
  );
  setHandler(
    saveUpdate,
    async (request) => {
      try {
        const result = await save.routeSaveToMaster({ ...request, timeoutMs: saveTimeoutMs });
        status.highWaterMark = Math.max(status.highWaterMark ?? 0, result.highWaterMark);
        count(result.applied ?? 0, result.evolved ?? []);
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
      description: 'Save a commitblock through this slave: routed to the master, answered once applied here',
      validator: (request) => {
        if (!request || !Array.isArray(request.changes) || request.changes.length === 0) throw new Error('a save needs at least one change');
        if (typeof request.idempotencyKey !== 'string' || request.idempotencyKey.length === 0) throw new Error('a save needs an idempotencyKey');
        // Refused before it is accepted into the history: an accepted one this large would wedge the run (Temporal's payload limit).
        const tooLarge = saveTooLarge(request.changes);
        if (tooLarge) throw new Error(tooLarge);
        if (status.halt) throw new Error(`slave ${slave} is halted (${status.halt.reason}); saves through it are refused until it is fixed`);
        // Continue-as-new waits for running saves; new ones would keep it waiting under a steady stream.
        if (draining) throw new Error(`slave ${slave}'s sync is starting its next run; ${SAVE_AGAIN_HINT}`);
        // A save applies blocks on this slave before it answers: a paused slave is not to be written.
        if (status.paused) throw new Error(`slave ${slave} is paused; saves through it are refused until it is resumed`);
      },
    },
  );

  const record = (result: SlaveSyncResult) => {
    if (status.masterUnreachableSince) log.info(`the master answers again (unreachable since ${status.masterUnreachableSince})`);
    count(result.applied, result.evolved);
    status.highWaterMark = result.highWaterMark;
    status.masterSeq = result.masterSeq;
    status.lagBlocks = result.lagBlocks;
    status.lagSeconds = result.lagSeconds;
    status.modelChecksum = result.modelChecksum;
    status.masterUnreachableSince = null;
    status.lastError = null;
    status.lastSyncAt = new Date().toISOString();
    status.state = result.lagBlocks === 0 ? 'caught-up' : 'syncing';
    lagBlocksGauge.set(result.lagBlocks);
    if (result.lagSeconds !== null) lagSecondsGauge.set(result.lagSeconds);
    alerted.unreachable = false;
    watchLag();
  };

  /** How long until the unreachable alert is due (no limit when it is not pending). */
  const untilUnreachableAlert = () =>
    !alerts || alerted.unreachable || !status.masterUnreachableSince
      ? Infinity
      : Math.max(1, Date.parse(status.masterUnreachableSince) + alerts.unreachableAfterMs - Date.now());

  /**
   * One long follow of the master, until it reports or an operator pauses the slave
   * (undefined then: the follow stopped, what it applied is committed and counted by the mark).
   */
  const followUntilReport = async (): Promise<SlaveSyncResult | undefined> => {
    const following = new CancellationScope();
    const pass = following.run(() =>
      follower.followMaster({ waitMs: pollIntervalMs, reportEveryMs, budgetMs: PASS_BUDGET_MS, caughtUp: status.state === 'caught-up' }),
    );
    const watching = new CancellationScope();
    const pausing = watching.run(() => condition(() => status.paused));
    pausing.catch(() => undefined); // cancelled below, once the follow has ended either way
    let first: { result: SlaveSyncResult } | undefined;
    try {
      first = await Promise.race([pass.then((result) => ({ result })), pausing.then(() => undefined)]);
    } finally {
      watching.cancel();
    }
    if (first) return first.result;
    following.cancel();
    try {
      return await pass;
    } catch (err) {
      if (isCancellation(err)) return undefined;
      throw err;
    }
  };

  let retryPause = pollIntervalMs;
  /** The master's failing answer seen on the last passes in a row, and how many times. */
  let failing: { message: string; times: number } | undefined;
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
      if (patched(FOLLOW_MASTER)) {
        // News before a follow is the follow's to find (it long-polls); only news during a pause after a failure cuts it short.
        news = false;
        const report = await followUntilReport();
        if (report) record(report);
      } else {
        const waitMs = news ? 0 : pollIntervalMs;
        news = false;
        record(await sync.pullAndApplyCommitblocks({ waitMs, budgetMs: PASS_BUDGET_MS }));
      }
      retryPause = pollIntervalMs;
      failing = undefined;
    } catch (err) {
      const kind = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause.type : undefined;
      status.lastError = operatorMessage(err);
      failing =
        kind === 'MasterFailed' ? { message: status.lastError, times: failing?.message === status.lastError ? failing.times + 1 : 1 } : undefined;
      // A master that answers, even with a failure, is not unreachable.
      if (kind === 'MasterFailed') status.masterUnreachableSince = null;
      const failingForGood = failing && failing.times >= SAME_FAILURES_BEFORE_HALT && patched(HALT_ON_A_FAILING_MASTER);
      if ((kind && SLAVE_HALT_KINDS.includes(kind)) || failingForGood) {
        status.halt = {
          kind: failingForGood ? 'MasterFailing' : kind!,
          reason: failingForGood
            ? `the master failed the same way ${failing!.times} times in a row: ${status.lastError}; look at the master's log, fix the cause, then resume`
            : status.lastError,
          since: new Date().toISOString(),
          resumeWith: `temporal workflow signal --workflow-id ${workflowInfo().workflowId} --name resume`,
        } satisfies SlaveHalt;
        log.warn(`halted: ${status.halt.reason}; after the fix: ${status.halt.resumeWith}`);
        raise('slave-halted', status.halt.since, `slave ${slave} stopped syncing: ${status.halt.kind}`, status.halt.reason, status.halt.resumeWith);
        failing = undefined;
        continue;
      }
      if (kind === 'MasterUnreachable' && !status.masterUnreachableSince) {
        status.masterUnreachableSince = new Date().toISOString();
        log.warn(`the master is unreachable: ${status.lastError}; reads go on, saves through this slave fail until it answers`);
      }
      status.state = kind === 'MasterUnreachable' ? 'master-unreachable' : 'syncing';
      watchUnreachable();
      // Wait, growing the pause, unless news, a pause or a resume comes first; an alert due meanwhile is not made to wait.
      await condition(() => news || status.paused || resumed, Math.min(retryPause, untilUnreachableAlert()));
      resumed = false;
      retryPause = Math.min(retryPause * 2, MAX_RETRY_PAUSE_MS);
    }
  }

  // Saves and alerts in flight finish in this run; the next run starts with a small history.
  draining = true;
  await condition(allHandlersFinished);
  await Promise.all(alertsInFlight);
  await continueAsNew<typeof slaveSync>({
    slave,
    pollIntervalMs,
    saveTimeoutMs,
    passesPerRun,
    ...(input.reportEveryMs !== undefined ? { reportEveryMs } : {}),
    ...(alerts ? { alerts } : {}),
    carried: {
      alerted,
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
