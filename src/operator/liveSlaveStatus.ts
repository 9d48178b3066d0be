/**
 * A slave's status as an operator should see it: slaveSync's `status` query, with the
 * mark and lag of the follow running now. slaveSync records a follow's figures only when it
 * reports (a state change, or every `reportEveryMs`); between reports the follow
 * heartbeats them, and Temporal keeps the last heartbeat with the pending activity, so
 * reading it needs no workflow task and works from any machine that reaches Temporal.
 */
import { defaultPayloadConverter, type WorkflowHandle } from '@temporalio/client';
import type { SlaveSyncResult, SlaveSyncStatus } from '../shared/slaveSync';

export async function liveSlaveStatus(handle: WorkflowHandle): Promise<SlaveSyncStatus> {
  const [status, description] = await Promise.all([handle.query<SlaveSyncStatus>('status'), handle.describe().catch(() => undefined)]);
  const pending = description?.raw.pendingActivities?.find((a) => a.activityType?.name === 'followMaster');
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  if (!payload || status.halt || status.paused) return status;
  const live = defaultPayloadConverter.fromPayload<Partial<SlaveSyncResult>>(payload as never);
  if (typeof live?.highWaterMark !== 'number' || live.highWaterMark < (status.highWaterMark ?? 0)) return status;
  const lagBlocks = typeof live.lagBlocks === 'number' ? live.lagBlocks : status.lagBlocks;
  return {
    ...status,
    highWaterMark: live.highWaterMark,
    masterSeq: typeof live.masterSeq === 'number' ? Math.max(live.masterSeq, status.masterSeq ?? 0) : status.masterSeq,
    lagBlocks,
    lagSeconds: live.lagSeconds !== undefined ? live.lagSeconds : status.lagSeconds,
    modelChecksum: live.modelChecksum ?? status.modelChecksum,
    appliedBlocks: status.appliedBlocks + (typeof live.applied === 'number' ? live.applied : 0),
    state: status.state === 'caught-up' || status.state === 'syncing' ? (lagBlocks === 0 ? 'caught-up' : 'syncing') : status.state,
  };
}
