/**
 * `lessonplan schedule create|list|pause|unpause|trigger|delete`: Temporal Schedules that
 * start prepareLesson on the reference machine (through ringSchoolBell), optionally with a
 * maintenance window for the classroom part of each rollout.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { msToNumber } from '@temporalio/common/lib/time';
import type { ClusterConfig } from '../config/schema';
import { defaultScheduleId } from '../shared/schedule';
import { connectClient, type OperatorClient } from './client';
import { UsageError, type CommandContext } from './commandContext';
import { actOnSchedule, createSchedule, listSchedules, type ScheduleAction, type ScheduleRow } from './schedules';

function parseDuration(option: string, value: string): number {
  try {
    const ms = msToNumber(value as never);
    if (Number.isFinite(ms) && ms > 0) return ms;
  } catch {
    // fall through to the one clear line below
  }
  throw new UsageError(`${option}: expected a duration such as "30s", "5m" or "1h", got "${value}"`);
}

export function describeRow(row: ScheduleRow): string {
  const lines = [`${row.scheduleId}: ${row.every}${row.paused ? ' (PAUSED)' : ''}`];
  lines.push(`  maintenance window: ${row.window ?? 'none (rollouts go on at any time)'}`);
  if (row.note) lines.push(`  note: ${row.note}`);
  if (!row.paused && row.nextRuns.length) lines.push(`  next: ${row.nextRuns.join(', ')}`);
  if (row.lastRun) lines.push(`  last: ${row.lastRun.scheduledAt} ${row.lastRun.workflowId}`);
  return lines.join('\n');
}

export function registerScheduleCommands(program: Command, ctx: CommandContext): void {
  const schedule = program
    .command('schedule')
    .description('Temporal Schedules that start prepareLesson on the reference machine (it does nothing when the inbox is empty)');
  const withClient = async <T>(work: (operator: OperatorClient, config: ClusterConfig) => Promise<T>): Promise<T> => {
    const config = ctx.config();
    const operator = await connectClient(config);
    try {
      return await work(operator, config);
    } finally {
      await operator.close();
    }
  };
  const idOf = (config: ClusterConfig, id?: string) => id ?? defaultScheduleId(config.reference.name);

  schedule
    .command('create')
    .description('create the schedule (overlap policy: skip); it starts prepareLesson, which holds a lesson when there is new subject matter')
    .addOption(new Option('--every <duration>', 'how often, e.g. 5m (default, unless --cron)'))
    .addOption(new Option('--cron <expression...>', 'cron expressions in UTC instead, e.g. "*/10 * * * *"').conflicts('every'))
    .option('--window <spec>', 'maintenance window for the classroom part, e.g. "Mon-Fri 02:00-04:00 +01:00; Sat,Sun 03:00-07:00 +01:00"')
    .option('--id <scheduleId>', 'the schedule id (default: prepare-lesson-<reference>)')
    .option('--paused', 'create it paused')
    .option('--replace', 'replace a schedule of the same id')
    .option('--note <text>', 'a note shown with the schedule')
    .action((options: { every?: string; cron?: string[]; window?: string; id?: string; paused?: boolean; replace?: boolean; note?: string }) =>
      withClient(async (operator, config) => {
        const everyMs = options.cron ? undefined : parseDuration('--every', options.every ?? '5m');
        const row = await createSchedule(operator.client, config, {
          scheduleId: idOf(config, options.id),
          everyMs,
          cron: options.cron,
          window: options.window,
          paused: options.paused,
          replace: options.replace,
          note: options.note,
        });
        ctx.print(`created ${describeRow(row)}`, row);
      }),
    );

  schedule
    .command('list')
    .description("this cluster's schedules: how often, the maintenance window, paused or not, the next and last runs")
    .action(() =>
      withClient(async (operator, config) => {
        const rows = await listSchedules(operator.client, config);
        ctx.print(rows.map(describeRow).join('\n') || '(no schedules; lessonplan schedule create makes one)', rows);
      }),
    );

  const act = (action: ScheduleAction, description: string, done: string) => {
    const command = schedule.command(action).description(description).argument('[scheduleId]', 'the schedule (default: prepare-lesson-<reference>)');
    if (action === 'pause' || action === 'unpause') command.option('--note <text>', 'why, shown with the schedule');
    command.action((id: string | undefined, options: { note?: string }) =>
      withClient(async (operator, config) => {
        const scheduleId = idOf(config, id);
        await actOnSchedule(operator.client, scheduleId, action, options.note);
        ctx.print(`${scheduleId} ${done}`, { scheduleId, action });
      }),
    );
  };
  act('pause', 'stop starting runs until unpaused (a run in progress goes on)', 'paused');
  act('unpause', 'start runs again', 'unpaused');
  act('trigger', 'ring the bell now: prepareLesson starts unless a run is in progress', 'triggered');
  act('delete', 'delete the schedule (runs it started go on)', 'deleted');
}
