/**
 * Temporal Schedules that ring the school bell (ringSchoolBell -> prepareLesson): create,
 * list, pause, unpause, trigger, delete. A schedule carries prepareLesson's input as the
 * config said when the schedule was made; after a config change, create it again with
 * --replace.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleSpec,
  type ScheduleSummary,
} from '@temporalio/client';
import type { ClusterConfig } from '../config/schema';
import { formatWindows, parseWindows } from '../shared/maintenanceWindow';
import { ORCHESTRATION_TASK_QUEUE, searchAttributes } from '../shared/names';
import { SCHEDULE_MEMO_KEY, type RingSchoolBellInput } from '../shared/schedule';
import type { ringSchoolBell } from '../workflows/ringSchoolBell';
import { UsageError } from './commandContext';
import { prepareLessonInput } from './prepare';

export interface ScheduleRequest {
  scheduleId: string;
  /** Every this many milliseconds... */
  everyMs?: number;
  /** ...or on these cron expressions (UTC). */
  cron?: string[];
  /** The maintenance window the classroom part of a rollout waits for (a window spec). */
  window?: string;
  paused?: boolean;
  /** Replace a schedule of the same id. */
  replace?: boolean;
  note?: string;
}

/** What lessonplan keeps in a schedule's memo: enough to list it without decoding its action. */
export interface ScheduleMemo {
  cluster: string;
  reference: string;
  window: string | null;
  every: string;
}

/** One schedule as `schedule list` shows it. */
export interface ScheduleRow {
  scheduleId: string;
  every: string;
  window: string | null;
  paused: boolean;
  note: string | null;
  nextRuns: string[];
  lastRun: { scheduledAt: string; workflowId: string } | null;
}

export function describeEvery(request: Pick<ScheduleRequest, 'everyMs' | 'cron'>): string {
  if (request.cron?.length) return `cron ${request.cron.join(' | ')} (UTC)`;
  const ms = request.everyMs!;
  if (ms % 3_600_000 === 0) return `every ${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `every ${ms / 60_000}m`;
  return `every ${ms / 1000}s`;
}

export async function createSchedule(client: Client, config: ClusterConfig, request: ScheduleRequest): Promise<ScheduleRow> {
  if (!request.everyMs && !request.cron?.length) throw new UsageError('a schedule needs --every or --cron');
  if (request.everyMs !== undefined && request.everyMs < 1000) throw new UsageError('--every: at least 1s');
  // Checked here, at the operator's terminal, and stored in canonical form: a bad window never reaches a workflow.
  const window = request.window === undefined ? undefined : canonicalWindow(request.window);
  const lesson = prepareLessonInput(config, 'schedule');
  if (window) lesson.rollout = { ...lesson.rollout, maintenanceWindow: window };
  const { requestedBy: _unused, ...lessonInput } = lesson;
  const input: RingSchoolBellInput = { scheduleId: request.scheduleId, lesson: lessonInput };
  const spec: ScheduleSpec = request.cron?.length ? { cronExpressions: request.cron } : { intervals: [{ every: request.everyMs! }] };
  const memo: ScheduleMemo = { cluster: config.cluster, reference: config.reference.name, window: window ?? null, every: describeEvery(request) };
  const options = {
    scheduleId: request.scheduleId,
    spec,
    action: {
      type: 'startWorkflow' as const,
      workflowType: 'ringSchoolBell',
      // Temporal appends the scheduled time to this id; prepareLesson itself keeps its fixed id.
      workflowId: `ring-school-bell/${config.reference.name}`,
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      args: [input] as Parameters<typeof ringSchoolBell>,
      typedSearchAttributes: [{ key: searchAttributes.cluster, value: config.cluster }],
      workflowExecutionTimeout: '10m',
    },
    // The seed's reference machine never starts a second preparation while one runs.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1m' },
    state: { paused: request.paused ?? false, note: request.note ?? `created by lessonplan schedule create for ${config.cluster}` },
    memo: { [SCHEDULE_MEMO_KEY]: memo },
  };
  try {
    await client.schedule.create(options);
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    if (!request.replace)
      throw new UsageError(`a schedule named ${request.scheduleId} exists already; give --replace to replace it, or another --id`);
    await client.schedule.getHandle(request.scheduleId).delete();
    await client.schedule.create(options);
  }
  return describeSchedule(client, request.scheduleId);
}

function canonicalWindow(spec: string): string {
  try {
    return formatWindows(parseWindows(spec));
  } catch (err) {
    throw new UsageError(`--window: ${(err as Error).message}`);
  }
}

/** The cluster's schedules (those lessonplan made for this config's cluster). */
export async function listSchedules(client: Client, config: ClusterConfig): Promise<ScheduleRow[]> {
  const rows: ScheduleRow[] = [];
  for await (const summary of client.schedule.list()) {
    const memo = summary.memo?.[SCHEDULE_MEMO_KEY] as ScheduleMemo | undefined;
    if (!memo || memo.cluster !== config.cluster) continue;
    rows.push(rowFrom(summary.scheduleId, memo, summary));
  }
  return rows.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
}

export async function describeSchedule(client: Client, scheduleId: string): Promise<ScheduleRow> {
  const description = await withKnownSchedule(scheduleId, () => client.schedule.getHandle(scheduleId).describe());
  const memo = description.memo?.[SCHEDULE_MEMO_KEY] as ScheduleMemo | undefined;
  if (!memo) throw new UsageError(`schedule ${scheduleId} was not made by lessonplan; manage it with the temporal CLI`);
  return rowFrom(scheduleId, memo, description);
}

function rowFrom(scheduleId: string, memo: ScheduleMemo, s: Pick<ScheduleSummary, 'state' | 'info'>): ScheduleRow {
  const last = s.info.recentActions.at(-1);
  const started = last?.action as { workflow?: { workflowId: string } } | undefined;
  return {
    scheduleId,
    every: memo.every,
    window: memo.window,
    paused: s.state.paused,
    note: s.state.note ?? null,
    nextRuns: s.info.nextActionTimes.slice(0, 3).map((d) => d.toISOString()),
    lastRun: last ? { scheduledAt: last.scheduledAt.toISOString(), workflowId: started?.workflow?.workflowId ?? '' } : null,
  };
}

export type ScheduleAction = 'pause' | 'unpause' | 'trigger' | 'delete';

export async function actOnSchedule(client: Client, scheduleId: string, action: ScheduleAction, note?: string): Promise<void> {
  // Only lessonplan's own schedules: describe refuses others with a clear line.
  await describeSchedule(client, scheduleId);
  const handle = client.schedule.getHandle(scheduleId);
  await withKnownSchedule(scheduleId, async () => {
    if (action === 'pause') await handle.pause(note ?? 'paused with lessonplan schedule pause');
    else if (action === 'unpause') await handle.unpause(note ?? 'unpaused with lessonplan schedule unpause');
    // A manual ring always rings; the bell itself does nothing while the teacher is still at work.
    else if (action === 'trigger') await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
    else await handle.delete();
  });
}

async function withKnownSchedule<T>(scheduleId: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new UsageError(`no schedule named ${scheduleId}; lessonplan schedule list shows them`);
    throw err;
  }
}
