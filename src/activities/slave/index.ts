/**
 * The slave's activities (task queue `slave-<name>`): they touch only this slave's
 * database and talk to the master over its API. The workflow gets summaries; the
 * replicated blocks go from the master's answer straight into the slave's database.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { DatabaseError, type Database } from '../../db/database';
import { currentModel } from '../../model/deploy';
import type { FollowMasterInput, SlaveSaveInput, SlaveSaveResult, SlaveSyncResult } from '../../shared/slaveSync';
import { InvalidChange } from '../../model/objectChanges';
import { BlockGap, SlaveModelMismatch } from './applyBlocks';
import { catchUp, ModelIntegrityError } from './catchUp';
import { AppliedMark } from './appliedMark';
import { MasterCallError, type MasterClient } from './masterClient';

export interface SlaveActivityDeps {
  slave: string;
  db: Database;
  master: MasterClient;
  /** Blocks asked for per request. */
  batchSize?: number;
  /** Shared with the slave's save endpoint in this process: how far blocks are applied here. */
  mark?: AppliedMark;
  /**
   * Aborted when the worker begins to stop (SIGTERM, SIGINT): the running follow reports what
   * it applied and ends, instead of being left to time out on its heartbeat once the process is gone.
   */
  stopping?: AbortSignal;
  /**
   * Whether the Temporal server answers now. A follow that would end its round to report
   * goes on applying instead while it does not: the next round needs a workflow task, and
   * the blocks (the slave's users wait on them) must not wait for one.
   */
  temporalReachable?: () => Promise<boolean>;
}

/** How long a caught-up slave must stay behind before its follow reports it. */
const SETTLE_MS = 1_000;

/** Turns what went wrong into a failure Temporal and the operator can act on. */
function asFailure(err: unknown, slave: string): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof MasterCallError) {
    return err.retryable ? ApplicationFailure.retryable(err.message, err.kind) : ApplicationFailure.nonRetryable(err.message, err.kind);
  }
  if (err instanceof BlockGap) return ApplicationFailure.nonRetryable(`slave ${slave}: ${err.message}`, 'BlockGap');
  if (err instanceof ModelIntegrityError) return ApplicationFailure.nonRetryable(`slave ${slave}: ${err.message}`, 'ModelIntegrity');
  // A block the slave's database refuses (bad data, a schema that does not fit) fails the same way every time: halt.
  if (err instanceof InvalidChange || err instanceof SlaveModelMismatch || (err instanceof DatabaseError && /^(22|23|42)/.test(err.code ?? ''))) {
    return ApplicationFailure.nonRetryable(`slave ${slave} cannot apply a block: ${err.message}`, 'ApplyFailed');
  }
  if (err instanceof DatabaseError) return ApplicationFailure.retryable(`slave ${slave}'s database: ${err.message}`, 'SlaveDatabase');
  return err;
}

export function createSlaveActivities({
  slave,
  db,
  master,
  batchSize = 1000,
  mark = new AppliedMark(),
  stopping,
  temporalReachable,
}: SlaveActivityDeps) {
  return {
    /**
     * Pulls the blocks after this slave's high-water mark from the master, evolving the
     * schema when a block needs a model the slave is not at, and applies them; waits up
     * to `waitMs` for news when there is none. Heartbeats the mark after every batch.
     */
    async pullAndApplyCommitblocks(input: { waitMs: number; budgetMs: number }): Promise<SlaveSyncResult> {
      const context = Context.current();
      // Heartbeat on a timer too: a long poll or a big batch must not look like a dead worker.
      let progress: { highWaterMark: number; applied: number } | undefined;
      const beat = setInterval(() => context.heartbeat(progress), 2_000);
      try {
        return await catchUp(db, master, {
          waitMs: input.waitMs,
          budgetMs: input.budgetMs,
          batchSize,
          onProgress: (p) => {
            progress = p;
            context.heartbeat(p);
          },
          signal: context.cancellationSignal,
        });
      } catch (err) {
        throw asFailure(err, slave);
      } finally {
        clearInterval(beat);
      }
    },

    /**
     * Follows the master for a long while (one activity, not one per batch, so no commit
     * waits for a workflow task to be pulled): long-polls for news, applies what comes,
     * heartbeats the mark. Returns when the workflow has something to record: the slave
     * caught up or fell behind (against `caughtUp`, what the workflow shows), the schema
     * evolved, or `reportEveryMs` passed. A pause cancels it between two batches.
     */
    async followMaster(input: FollowMasterInput): Promise<SlaveSyncResult> {
      const context = Context.current();
      const started = Date.now();
      let live: SlaveSyncResult | undefined;
      let progress: { highWaterMark: number; applied: number } | undefined;
      // The heartbeat carries the live mark and lag: what `slave status` and the UI show between reports.
      const beat = () => context.heartbeat({ ...live, ...progress });
      const timer = setInterval(beat, 1_000);
      const followed = mark.following();
      /** Ended by handing a report to the workflow, which starts the next follow at once. */
      let reported = false;
      /** Since when the slave is behind while the workflow shows it caught up. */
      let behindSince: number | undefined;
      /** A report is due but the Temporal server does not answer. */
      let unreported = false;
      let askedAt = 0;
      let asking: Promise<boolean> | undefined;
      let answered = false;
      /**
       * Whether the Temporal server takes a report now. Asked and waited for when a report
       * is first due (a quick answer while it runs); while it does not answer, asked again
       * in the background at most once a second, so that a server that drops packets never
       * holds up the apply.
       */
      const reportCanGo = async (): Promise<boolean> => {
        if (!temporalReachable) return true;
        if (!unreported) {
          if (await temporalReachable()) return true;
          context.log.warn('the Temporal server does not answer: the follow goes on applying, and reports once it is back');
          unreported = true;
          askedAt = Date.now();
          return false;
        }
        if (!asking && Date.now() - askedAt >= 1_000) {
          askedAt = Date.now();
          asking = temporalReachable().then((yes) => {
            answered = yes;
            asking = undefined;
            return yes;
          });
        }
        return answered;
      };
      let applied = 0;
      const evolved: SlaveSyncResult['evolved'] = [];
      const signal = stopping ? AbortSignal.any([context.cancellationSignal, stopping]) : context.cancellationSignal;
      /** The last report, with the batches committed since: what a stopping worker hands back. */
      const reportNow = () => {
        if (!live)
          throw ApplicationFailure.retryable(`slave ${slave}'s worker is stopping; the next worker goes on from the slave's mark`, 'WorkerStopping');
        return { ...live, highWaterMark: progress?.highWaterMark ?? live.highWaterMark, applied, evolved };
      };
      try {
        for (;;) {
          const left = input.reportEveryMs - (Date.now() - started);
          const pass = await catchUp(db, master, {
            // A report waiting for the Temporal server: the follow waits for news as long as it may, not in a tight loop.
            waitMs: unreported ? input.waitMs : Math.max(0, Math.min(input.waitMs, left)),
            budgetMs: input.budgetMs,
            batchSize,
            onProgress: (p) => {
              progress = { highWaterMark: p.highWaterMark, applied: applied + p.applied };
              mark.advance(p.highWaterMark);
            },
            signal,
          });
          applied += pass.applied;
          evolved.push(...pass.evolved);
          live = { ...pass, applied, evolved };
          progress = undefined;
          beat();
          // Caught up while the workflow shows otherwise is news at once (it clears an outage). Behind
          // while it shows caught up is news once it lasts: under a steady stream of saves a slave is
          // a block behind after nearly every batch, and a report each time would cost a workflow task.
          behindSince = pass.lagBlocks > 0 && input.caughtUp ? (behindSince ?? Date.now()) : undefined;
          const changed =
            pass.evolved.length > 0 ||
            (pass.lagBlocks === 0 && !input.caughtUp) ||
            (behindSince !== undefined && Date.now() - behindSince >= SETTLE_MS);
          if (stopping?.aborted) return live;
          if ((changed || Date.now() - started >= input.reportEveryMs) && (await reportCanGo())) {
            reported = true;
            return live;
          }
          if (context.cancellationSignal.aborted) throw new CancelledFailure('paused');
        }
      } catch (err) {
        // Cancelled (a pause): whatever was applied is committed, and the next pass goes on from the slave's own mark.
        if (context.cancellationSignal.aborted) throw new CancelledFailure('paused');
        if (stopping?.aborted) return reportNow(); // a stopping worker's follow is not followed at once: reported stays false
        throw asFailure(err, slave);
      } finally {
        followed(reported);
        clearInterval(timer);
      }
    },

    /**
     * Routes a save to the master, then applies blocks here up to the save's own block
     * before answering, so that whoever saved through this slave reads the save here.
     */
    async routeSaveToMaster(input: SlaveSaveInput & { timeoutMs: number }): Promise<SlaveSaveResult> {
      const context = Context.current();
      try {
        const started = Date.now();
        // A slave that has no model yet takes the master's first (a pass does the same).
        let first: SlaveSyncResult | undefined;
        const modelChecksum =
          input.modelChecksum ??
          (await currentModel(db))?.checksum ??
          (first = await catchUp(db, master, { waitMs: 0, budgetMs: input.timeoutMs, batchSize, signal: context.cancellationSignal })).modelChecksum;
        if (!modelChecksum) {
          throw ApplicationFailure.nonRetryable(
            `slave ${slave} has no model yet and neither has the master: deploy a model to the master first`,
            'NoModel',
          );
        }
        const answer = await master.save(
          { modelChecksum, changes: input.changes, idempotencyKey: input.idempotencyKey },
          { timeoutMs: input.timeoutMs, signal: context.cancellationSignal },
        );
        const applied = await catchUp(db, master, {
          waitMs: 0,
          until: answer.seq,
          budgetMs: Math.max(1_000, input.timeoutMs - (Date.now() - started)),
          batchSize,
          signal: context.cancellationSignal,
        });
        mark.advance(applied.highWaterMark);
        if (applied.highWaterMark < answer.seq) {
          throw ApplicationFailure.nonRetryable(
            `the save was made (block ${answer.seq} on the master), but slave ${slave} has applied only up to block ${applied.highWaterMark} within ${input.timeoutMs} ms; it arrives there with the next sync`,
            'SaveNotYetApplied',
          );
        }
        return {
          seq: answer.seq,
          duplicate: answer.duplicate,
          highWaterMark: applied.highWaterMark,
          // The work done here on the way counts in the slave's status like a pass's.
          applied: (first?.applied ?? 0) + applied.applied,
          evolved: [...(first?.evolved ?? []), ...applied.evolved],
        };
      } catch (err) {
        throw asFailure(err, slave);
      }
    },
  };
}

export type SlaveActivities = ReturnType<typeof createSlaveActivities>;
