/**
 * Bytes each satellite's running copy has reported so far. The rollout learns a copy's
 * size only when it ends, but the copy activity heartbeats its progress, and Temporal
 * keeps the last heartbeat with the pending activity: reading it needs no change to the
 * workflow and works from any machine that reaches Temporal.
 */
import { defaultPayloadConverter, type Client } from '@temporalio/client';
import { satelliteTaskQueue } from '../shared/names';

export async function liveCopyBytes(client: Client, rolloutId: string, satellites: string[]): Promise<Map<string, number>> {
  const live = new Map<string, number>();
  const description = await client.workflow.getHandle(rolloutId).describe();
  const byQueue = new Map(satellites.map((name) => [satelliteTaskQueue(name), name]));
  for (const pending of description.raw.pendingActivities ?? []) {
    if (pending.activityType?.name !== 'copyLesson') continue;
    const satellite = byQueue.get(pending.activityOptions?.taskQueue?.name ?? '');
    const payload = pending.heartbeatDetails?.payloads?.[0];
    if (!satellite || !payload) continue;
    const progress = defaultPayloadConverter.fromPayload<{ bytes?: number }>(payload as never);
    if (typeof progress?.bytes === 'number') live.set(satellite, progress.bytes);
  }
  return live;
}
