/**
 * What a command of the cluster's own is printing now: the reference's command activities
 * heartbeat the field they run and the last lines of its output (see
 * activities/reference/ownSubjects.ts), and Temporal keeps the last heartbeat with the
 * pending activity, so `lesson watch` shows it live from any machine that reaches Temporal.
 */
import { defaultPayloadConverter, type Client } from '@temporalio/client';

export interface LiveCommand {
  /** The config field of the command, e.g. reference.subjects[0].prepare[1]. */
  command: string;
  /** The last lines it printed. */
  output: string;
}

export async function liveCommandOutput(client: Client, workflowId: string): Promise<LiveCommand | undefined> {
  const description = await client.workflow.getHandle(workflowId).describe();
  for (const pending of description.raw.pendingActivities ?? []) {
    const payload = pending.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    const beat = defaultPayloadConverter.fromPayload<Partial<LiveCommand>>(payload as never);
    if (typeof beat?.command === 'string' && typeof beat.output === 'string') return { command: beat.command, output: beat.output };
  }
  return undefined;
}
