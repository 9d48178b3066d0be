/**
 * `lessonplan lesson start|status|watch|resume|abort|pause|list` and `lessonplan
 * reports`: the teacher's runs (prepareLesson) and their rollouts (holdLesson) from a
 * terminal. Without a lesson id a command acts on the reference's current run and, when
 * it holds a lesson, its rollout; with one, on that lesson's rollout.
 * Exit codes: 0 done or nothing to do, 1 halted, failed, aborted (or the command failed),
 * 2 bad usage.
 */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { ClusterConfig } from '../config/schema';
import { openDatabase } from '../db/database';
import { migrateOperational } from '../db/migrate';
import { workflowIds } from '../shared/names';
import type { PreparationStatus } from '../shared/preparation';
import type { RolloutStatus } from '../shared/rollout';
import { describeCapacity } from '../shared/capacity';
import { databaseUrl } from '../stack/endpoints';
import { fileFolderAsLesson, holdFiledLesson } from './fileLesson';
import { connectClient, workflowUrl, type OperatorClient } from './client';
import { startRollBack } from './rollout';
import { operatorMessage } from '../workflows/failures';
import { startPrepareLesson } from './prepare';
import { formatBytes, printProgress } from './progress';
import { showBars, terminalCanDrawBars } from './watchBars';
import type { CommandContext } from './commandContext';
import { resumeCommand } from '../shared/summaries';

/** What a lesson command acts on: the teacher's run, and the rollout it holds (if any). */
interface Target {
  preparation?: { workflowId: string; status: PreparationStatus };
  rollout?: { workflowId: string; status: RolloutStatus };
}

async function queryOrUndefined<T>(client: Client, workflowId: string): Promise<T | undefined> {
  try {
    return await client.workflow.getHandle(workflowId).query<T>('status');
  } catch {
    return undefined;
  }
}

/** The cluster's rollback, when it runs (or, with a lesson id, when it goes back to that lesson). */
async function rollBackTarget(
  operator: OperatorClient,
  config: ClusterConfig,
  lessonId?: string,
  options: { running?: boolean } = {},
): Promise<Target | undefined> {
  const workflowId = workflowIds.rollBackLesson(config.cluster);
  const handle = operator.client.workflow.getHandle(workflowId);
  const running = await handle
    .describe()
    .then((d) => d.status.name === 'RUNNING')
    .catch(() => false);
  if (!running && (!lessonId || options.running)) return undefined;
  const status = await queryOrUndefined<RolloutStatus>(operator.client, workflowId);
  if (!status || (lessonId && status.lessonId !== lessonId)) return undefined;
  return { rollout: { workflowId, status } };
}

async function findTarget(operator: OperatorClient, config: ClusterConfig, lessonId?: string): Promise<Target> {
  if (lessonId) {
    // A rollback back to this lesson that runs comes first: the lesson's own rollout has ended long ago.
    const rollBack = await rollBackTarget(operator, config, lessonId, { running: true });
    if (rollBack) return rollBack;
    const workflowId = workflowIds.holdLesson(lessonId);
    const status = await queryOrUndefined<RolloutStatus>(operator.client, workflowId);
    if (status) return { rollout: { workflowId, status } };
    const ended = await rollBackTarget(operator, config, lessonId);
    if (ended) return ended;
    throw new Error(`no rollout of lesson ${lessonId} (${workflowId}); lessonplan lesson list shows the lessons`);
  }
  // A rollback that runs is what an operator acts on now.
  const rollBack = await rollBackTarget(operator, config);
  if (rollBack) return rollBack;
  const workflowId = workflowIds.prepareLesson(config.reference.name);
  const status = await queryOrUndefined<PreparationStatus>(operator.client, workflowId);
  if (!status)
    throw new Error(`the reference ${config.reference.name} has no lesson run yet (${workflowId}); start one with: lessonplan lesson start`);
  const rolloutId = status.rollout?.workflowId;
  const rollout = rolloutId ? await queryOrUndefined<RolloutStatus>(operator.client, rolloutId) : undefined;
  return { preparation: { workflowId, status }, ...(rolloutId && rollout ? { rollout: { workflowId: rolloutId, status: rollout } } : {}) };
}

/** Lines for people: where the run stands, a halt in plain words, and the command that resumes it. */
export function describeTarget(target: Target, lessonIdGiven?: string): string[] {
  const lines: string[] = [];
  const prep = target.preparation?.status;
  if (prep) {
    lines.push(`prepareLesson ${target.preparation!.workflowId}: ${prep.phase}${prep.lessonId ? `, lesson ${prep.lessonId}` : ''}`);
    lines.push(`  ${prep.summary}`);
    if (prep.halted) {
      lines.push(`  HALTED in ${prep.halted.step} since ${prep.halted.since}: ${prep.halted.reason}`);
      lines.push(`  after the fix: ${resumeCommand(lessonIdGiven)}   (or give up: lessonplan lesson abort)`);
    }
  }
  const rollout = target.rollout?.status;
  if (rollout) {
    lines.push(
      `holdLesson ${target.rollout!.workflowId}: ${rollout.phase}${rollout.paused ? ' (paused)' : ''}, ${rollout.serving} satellites serving (minimum ${rollout.minServing})`,
    );
    for (const g of rollout.groups) {
      lines.push(`  ${g.name}: ${g.state}`);
      for (const s of g.satellites) {
        const exam = s.examination ? `, examination ${s.examination.passed ? 'passed' : `FAILED: ${s.examination.failures.join('; ')}`}` : '';
        lines.push(
          `    ${s.name.padEnd(10)} ${s.state.padEnd(12)} ${formatBytes(s.bytesCopied)} copied${exam}${s.lessonServed ? `, serves ${s.lessonServed}` : ''}`,
        );
      }
    }
    if (rollout.capacity) lines.push(`  capacity: ${describeCapacity(rollout.capacity)}`);
    if (rollout.mixedWindowMs !== undefined || rollout.mixed)
      lines.push(
        `  old and new answers side by side: ${((rollout.mixedWindowMs ?? 0) / 1000).toFixed(1)} s${rollout.mixed ? `, and now since ${rollout.mixed.since} (${rollout.mixed.why})` : ''}`,
      );
    if (rollout.window && !rollout.window.open) {
      lines.push(
        `  waiting for the maintenance window (${rollout.window.spec}): group ${rollout.window.parkedBefore} goes in at ${rollout.window.opensAt}; to go on now: ${resumeCommand(rollout.lessonId)}`,
      );
    }
    if (rollout.halted) {
      lines.push(
        `  HALTED in ${rollout.halted.step} of group ${rollout.halted.group} (${rollout.halted.satellites.join(', ')}) since ${rollout.halted.since}: ${rollout.halted.reason}`,
      );
      lines.push(
        `  after the fix: ${resumeCommand(lessonIdGiven)}   (or give up: lessonplan lesson abort${lessonIdGiven ? ` ${lessonIdGiven}` : ''})`,
      );
    }
  }
  return lines;
}

const needsAttention = (t: Target) =>
  !!t.preparation?.status.halted ||
  !!t.rollout?.status.halted ||
  ['failed', 'aborted'].includes(t.preparation?.status.phase ?? '') ||
  t.rollout?.status.phase === 'aborted';

const ENDED_PREPARATION = ['done', 'nothing-to-do', 'busy', 'aborted', 'failed'];
const ENDED_ROLLOUT = ['done', 'aborted'];

/** The rollout holds for an operator: halted, paused (or asked to pause), or parked until its maintenance window. */
const rolloutWaits = (s: RolloutStatus) => !!s.halted || s.paused || s.phase === 'paused' || s.phase === 'waiting-for-window';

/**
 * Where `resume` has something to do: the teacher's halt, else the rollout's halt, pause
 * or wait for its window. A signal anywhere else would be taken and change nothing, so
 * none is sent: the error (exit 1) says what phase each is in instead.
 */
function whereToResume(target: Target): string {
  const { preparation: prep, rollout } = target;
  if (prep?.status.halted) return prep.workflowId;
  if (rollout && rolloutWaits(rollout.status)) return rollout.workflowId;
  const phase = (p: string, ended: string[]) => `is in phase ${p}${ended.includes(p) ? ' (it has ended)' : ''}`;
  const parts = [
    ...(prep ? [`the run ${prep.workflowId} ${phase(prep.status.phase, ENDED_PREPARATION)}, not halted`] : []),
    ...(rollout
      ? [
          `${prep ? 'its' : 'the'} rollout ${rollout.workflowId} ${phase(rollout.status.phase, ENDED_ROLLOUT)}, neither halted, paused nor waiting for its maintenance window`,
        ]
      : []),
  ];
  throw new Error(`nothing to resume: ${parts.join('; ')}`);
}

export function registerLessonCommands(program: Command, ctx: CommandContext): void {
  const lesson = program.command('lesson').description("the teacher's runs (prepareLesson) and the rollouts they hold (holdLesson)");
  const withClient = async <T>(work: (operator: OperatorClient, config: ClusterConfig) => Promise<T>): Promise<T> => {
    const config = ctx.config();
    const operator = await connectClient(config);
    try {
      return await work(operator, config);
    } finally {
      await operator.close();
    }
  };

  lesson
    .command('start')
    .description('start prepareLesson on the reference (it does nothing when the inbox is empty); refused while one runs')
    .option('--watch', 'then watch it until it ends')
    .action((options: { watch?: boolean }) =>
      withClient(async (operator, config) => {
        const handle = await startPrepareLesson(operator.client, config, 'lessonplan lesson start');
        const url = workflowUrl(operator.endpoint, handle.workflowId, handle.firstExecutionRunId);
        ctx.print(`started ${handle.workflowId}${url ? `\nTemporal UI: ${url}` : ''}`, {
          workflowId: handle.workflowId,
          runId: handle.firstExecutionRunId,
          url,
        });
        if (options.watch) await watch(operator, config, ctx);
      }),
    );

  lesson
    .command('file')
    .description('file a folder another pipeline built as a lesson, on the reference machine (copied, manifest, stats); prints its id')
    .argument('<folder>', 'the folder of files to serve')
    .option('--query <path...>', 'URL paths of files in it that every satellite must answer as filed (its examination)', [])
    .action((folder: string, options: { query: string[] }) => {
      const config = ctx.config();
      const db = openDatabase(databaseUrl(config, config.reference.database), { applicationName: 'lessonplan-cli' });
      return fileFolderAsLesson(config, db, folder, options.query)
        .then(({ lesson: filed, previous, filesChanged, pruned }) =>
          ctx.print(
            `filed lesson ${filed.lessonId}: ${filed.fileCount} files, ${filesChanged} changed since ${previous ?? 'no lesson'}${pruned.length ? `; pruned ${pruned.join(', ')}` : ''}\nhold it with: lessonplan lesson hold ${filed.lessonId}`,
            { lesson: filed, previous, filesChanged, pruned },
          ),
        )
        .finally(() => db.close());
    });

  lesson
    .command('hold')
    .description('roll a lesson filed with "lesson file" out to the satellites (holdLesson); refused while a run of this cluster is on')
    .argument('<lessonId>', 'the filed lesson')
    .option('--watch', 'then wait until the rollout ends')
    .action((lessonId: string, options: { watch?: boolean }) =>
      withClient(async (operator, config) => {
        const { workflowId } = await holdFiledLesson(operator.client, config, lessonId);
        const url = workflowUrl(operator.endpoint, workflowId);
        ctx.print(`started ${workflowId}${url ? `\nTemporal UI: ${url}` : ''}`, { workflowId, url });
        if (options.watch) {
          const result = (await operator.client.workflow.getHandle(workflowId).result()) as RolloutStatus;
          ctx.print(`holdLesson ${result.phase}: ${result.serving} satellites serving`, result);
          if (result.phase !== 'done') ctx.fail();
        }
      }),
    );

  lesson
    .command('status')
    .description('where the current run (or the rollout of a lesson) stands; a halt in plain words with the command that resumes it (exit 1 then)')
    .argument('[lessonId]', 'a lesson whose rollout to show')
    .action((lessonId?: string) =>
      withClient(async (operator, config) => {
        const target = await findTarget(operator, config, lessonId);
        ctx.print(describeTarget(target, lessonId).join('\n'), target);
        if (needsAttention(target)) ctx.fail();
      }),
    );

  lesson
    .command('watch')
    .description('follow the current run and its rollout until it ends, a line per change; exit 1 unless it ends done')
    .action(() => withClient((operator, config) => watch(operator, config, ctx)));

  const signalCommand = (name: 'resume' | 'abort' | 'pause', description: string) => {
    const command = lesson
      .command(name)
      .description(description)
      .argument('[lessonId]', "a lesson's rollout (default: the current run, or its rollout)");
    if (name === 'abort') command.option('--reason <text>', 'why, for the report');
    command.action((lessonId: string | undefined, options: { reason?: string }) =>
      withClient(async (operator, config) => {
        const target = await findTarget(operator, config, lessonId);
        const prep = target.preparation;
        const rollout = target.rollout;
        // resume goes where the halt (or the pause, or the wait) is; abort to the teacher's run (it stops its rollout too); pause to the rollout.
        const workflowId =
          name === 'resume' ? whereToResume(target) : name === 'abort' ? (prep?.workflowId ?? rollout?.workflowId) : rollout?.workflowId;
        if (!workflowId) throw new Error(`nothing to ${name}: ${name === 'pause' ? 'no rollout is running' : 'no run found'}`);
        const handle = operator.client.workflow.getHandle(workflowId);
        if (name === 'abort') await handle.signal('abort', options.reason ?? 'lessonplan lesson abort');
        else await handle.signal(name);
        ctx.print(`${name} sent to ${workflowId}`, { signal: name, workflowId });
      }),
    );
  };
  signalCommand('resume', 'retry the failed step after the fix (also ends a pause)');
  signalCommand('abort', 'stop: every satellite back on the lesson it served, in service; nothing filed goes out');
  signalCommand('pause', 'hold the rollout before its next group');

  lesson
    .command('rollback')
    .description(
      'switch the cluster back, group by group and without copying, to a lesson every satellite still holds (rollBackLesson); refused, with the reason, when one does not',
    )
    .option('--to <lessonId>', 'the lesson to go back to (default: the one filed before what the cluster serves)')
    .option('--no-wait', 'start it and return')
    .action((options: { to?: string; wait: boolean }) =>
      withClient(async (operator, config) => {
        const handle = await startRollBack(operator.client, config, options.to);
        const url = workflowUrl(operator.endpoint, handle.workflowId, handle.firstExecutionRunId);
        ctx.say(`started ${handle.workflowId}${options.to ? ` back to lesson ${options.to}` : ''}${url ? `\nTemporal UI: ${url}` : ''}`);
        if (!options.wait) {
          ctx.print(`started ${handle.workflowId}`, { workflowId: handle.workflowId, url });
          return;
        }
        const result = handle.result();
        for (;;) {
          const done = await Promise.race([
            result.then(
              (status) => ({ status }),
              (err: unknown) => ({ err }),
            ),
            new Promise<undefined>((r) => setTimeout(() => r(undefined), 500)),
          ]);
          if (done && 'err' in done) throw new Error(`the rollback was refused or failed: ${operatorMessage(done.err)}`);
          if (done) {
            const { startTime, closeTime } = await handle.describe();
            const seconds = closeTime ? (closeTime.getTime() - startTime.getTime()) / 1000 : undefined;
            const s = done.status;
            const capacity = s.capacity ? `; ${describeCapacity(s.capacity)}` : '';
            ctx.print(
              `rollback to lesson ${s.lessonId} ${s.phase}${seconds !== undefined ? ` in ${seconds.toFixed(1)} s` : ''}: ${s.serving} satellites serving${capacity}`,
              { ...s, wallSeconds: seconds },
            );
            if (s.phase !== 'done') ctx.fail();
            return;
          }
          const status = await queryOrUndefined<RolloutStatus>(operator.client, handle.workflowId);
          if (status?.halted) {
            ctx.print(describeTarget({ rollout: { workflowId: handle.workflowId, status } }).join('\n'), status);
            ctx.fail();
            return;
          }
        }
      }),
    );

  lesson
    .command('list')
    .description('the runs and rollouts Temporal knows, newest first')
    .option('--limit <n>', 'at most this many', '20')
    .action((options: { limit: string }) =>
      withClient(async (operator) => {
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit: expected a positive whole number, got "${options.limit}"`);
        const rows: { workflowId: string; type: string; status: string; startTime: string; closeTime?: string }[] = [];
        for await (const w of operator.client.workflow.list({ query: "WorkflowType IN ('prepareLesson', 'holdLesson', 'rollBackLesson')" })) {
          rows.push({
            workflowId: w.workflowId,
            type: w.type,
            status: w.status.name,
            startTime: w.startTime.toISOString(),
            closeTime: w.closeTime?.toISOString(),
          });
          if (rows.length >= limit) break;
        }
        ctx.print(rows.map((r) => `${r.startTime}  ${r.status.padEnd(11)} ${r.workflowId}`).join('\n') || '(none)', rows);
      }),
    );

  program
    .command('reports')
    .description('the task monitor: what each run did and how it ended, newest first')
    .option('--limit <n>', 'at most this many', '20')
    .option('--log', "print each report's log too")
    .action(async (options: { limit: string; log?: boolean }) => {
      const config = ctx.config();
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit: expected a positive whole number, got "${options.limit}"`);
      const ops = openDatabase(databaseUrl(config, config.operationalDatabase), { applicationName: 'lessonplan-cli' });
      try {
        // A task monitor nobody has written to yet may not have its tables: make them (idempotent).
        await migrateOperational(ops);
        const { rows } = await ops.query<{
          task: string;
          machine: string | null;
          status: string;
          summary: string;
          log: string;
          started_at: Date;
          finished_at: Date | null;
        }>('SELECT task, machine, status, summary, log, started_at, finished_at FROM reports ORDER BY started_at DESC, id DESC LIMIT $1', [limit]);
        const text = rows
          .map((r) => {
            const head = `${r.started_at.toISOString()}  ${r.status.padEnd(13)} ${r.task}${r.machine ? ` on ${r.machine}` : ''}: ${r.summary}`;
            return options.log && r.log
              ? `${head}\n${r.log
                  .split('\n')
                  .map((l) => `    ${l}`)
                  .join('\n')}`
              : head;
          })
          .join('\n');
        ctx.print(text || '(no reports yet)', rows);
      } finally {
        await ops.close();
      }
    });
}

/** Follows the reference's current run until it closes; its outcome sets the exit code. */
async function watch(operator: OperatorClient, config: ClusterConfig, ctx: CommandContext): Promise<void> {
  const workflowId = workflowIds.prepareLesson(config.reference.name);
  // A terminal gets live bars; a pipe, a log file or --json gets plain lines.
  const progress = !ctx.json() && terminalCanDrawBars() ? showBars(operator.client, workflowId) : printProgress(operator.client, workflowId, ctx.say);
  let halted = false;
  try {
    // The result, or a halt: a halted run waits for an operator, so watching ends there too.
    const handle = operator.client.workflow.getHandle(workflowId);
    const result = handle.result() as Promise<PreparationStatus>;
    for (;;) {
      const done = await Promise.race([result.then((r) => ({ r })), new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]);
      if (done) {
        await progress.stop(done.r);
        ctx.print(`prepareLesson ${done.r.phase}: ${done.r.summary}`, done.r);
        if (!['done', 'nothing-to-do'].includes(done.r.phase)) ctx.fail();
        return;
      }
      const target = await findTarget(operator, config).catch(() => undefined);
      if (target && (target.preparation?.status.halted || target.rollout?.status.halted)) {
        halted = true;
        await progress.stop();
        ctx.print(describeTarget(target).join('\n'), target);
        ctx.fail();
        return;
      }
    }
  } finally {
    if (!halted) await progress.stop();
  }
}
