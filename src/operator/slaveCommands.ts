/**
 * `lessonplan slave start|status|pause|resume|verify`, `lessonplan save` and `lessonplan model
 * deploy`: the master/slave cluster from a terminal. Exit codes: 0 done (and, for status,
 * every slave syncing or caught up), 1 failed or a slave needs attention, 2 bad usage.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse } from 'yaml';
import type { ClusterConfig } from '../config/schema';
import { openDatabase } from '../db/database';
import { describeIssues, saveFileSchema } from '../model/changeSchema';
import { deployModel, migrateReplica, type DeployResult } from '../model/deploy';
import { readModelFile } from '../model/modelFile';
import { workflowIds } from '../shared/names';
import type { SlaveSaveInput, SlaveSyncStatus } from '../shared/slaveSync';
import { databaseUrl } from '../stack/endpoints';
import { connectClient, workflowUrl } from './client';
import { SaveNotAnsweredError, saveThroughSlave, slaveSyncInput, startSlaveSync } from './slaveSync';
import { describeVerification, verifySlave, type SlaveVerification } from './slaveVerify';
import { UsageError, type CommandContext } from './commandContext';
import { liveSlaveStatus } from './liveSlaveStatus';

function slavesOf(config: ClusterConfig, names: string[]): string[] {
  const chosen = names.length > 0 ? names : config.slaves.map((s) => s.name);
  for (const name of chosen) slaveSyncInput(config, name); // refuses an unknown name, listing the configured ones
  if (chosen.length === 0) throw new UsageError('the config has no slaves');
  return chosen;
}

/** One line of `slave status`: where the slave stands and, when it needs someone, why. */
export function describeSlave(s: SlaveSyncStatus): string {
  const lag = s.lagBlocks === null ? '' : `, lag ${s.lagBlocks} blocks${s.lagSeconds ? ` (${s.lagSeconds.toFixed(1)} s)` : ''}`;
  const head = `${s.slave.padEnd(12)} ${s.state.padEnd(18)} block ${s.highWaterMark ?? '?'} of ${s.masterSeq ?? '?'}${lag}, model ${s.modelChecksum?.slice(0, 12) ?? 'none'}`;
  const notes = [
    ...(s.masterUnreachableSince ? [`  master unreachable since ${s.masterUnreachableSince}`] : []),
    ...(s.halt ? [`  halted (${s.halt.kind}) since ${s.halt.since}: ${s.halt.reason}`, `  after the fix: ${s.halt.resumeWith}`] : []),
    ...(s.lastError && !s.halt ? [`  last error: ${s.lastError}`] : []),
  ];
  return [head, ...notes].join('\n');
}

export function registerSlaveCommands(program: Command, ctx: CommandContext): void {
  const slave = program.command('slave').description('the slaves of the master/slave cluster: their slaveSync workflows');

  slave
    .command('start')
    .description('start slaveSync for the slaves (all configured ones by default); a running one is left as it is')
    .argument('[names...]', 'slave names')
    .action(async (names: string[]) => {
      const config = ctx.config();
      const operator = await connectClient(config);
      try {
        const started = [];
        for (const name of slavesOf(config, names)) {
          const handle = await startSlaveSync(operator.client, config, name);
          started.push({ slave: name, workflowId: handle.workflowId, url: workflowUrl(operator.endpoint, handle.workflowId) });
        }
        ctx.print(started.map((s) => `${s.slave}: ${s.workflowId} running${s.url ? ` (${s.url})` : ''}`).join('\n'), started);
      } finally {
        await operator.close();
      }
    });

  slave
    .command('status')
    .description('where each slave stands: state, block, lag, model, why it needs attention (exit 1 if one does)')
    .argument('[names...]', 'slave names')
    .action(async (names: string[]) => {
      const config = ctx.config();
      const operator = await connectClient(config);
      try {
        const statuses: SlaveSyncStatus[] = [];
        const missing: string[] = [];
        for (const name of slavesOf(config, names)) {
          try {
            statuses.push(await liveSlaveStatus(operator.client.workflow.getHandle(workflowIds.slaveSync(name))));
          } catch {
            missing.push(name);
          }
        }
        const lines = [
          ...statuses.map(describeSlave),
          ...missing.map((name) => `${name.padEnd(12)} not running; start it with: lessonplan slave start ${name}`),
        ];
        ctx.print(lines.join('\n'), { slaves: statuses, notRunning: missing });
        if (missing.length > 0 || statuses.some((s) => s.halt || s.masterUnreachableSince)) ctx.fail();
      } finally {
        await operator.close();
      }
    });

  for (const [command, signal, what] of [
    ['pause', 'pause', 'stop pulling after the current pass; saves through the slave are refused until resume'],
    ['resume', 'resume', 'end a pause, or a halt after the fix'],
  ] as const) {
    slave
      .command(command)
      .description(what)
      .argument('<name>', 'slave name')
      .action(async (name: string) => {
        const config = ctx.config();
        slavesOf(config, [name]);
        const operator = await connectClient(config);
        try {
          await operator.client.workflow.getHandle(workflowIds.slaveSync(name)).signal(signal);
          ctx.print(`${name}: ${signal} sent`, { slave: name, signal });
        } finally {
          await operator.close();
        }
      });
  }

  slave
    .command('verify')
    .description('compare each slave with the master, table by table (exit 1 on a difference, naming the table and the first differing key)')
    .argument('[names...]', 'slave names')
    .option('--wait <seconds>', 'how long to wait for a slave to catch up and for saves to pause, so both sides hold the same blocks', '60')
    .action(async (names: string[], options: { wait: string }) => {
      const config = ctx.config();
      if (!config.master) throw new UsageError('the config has no master');
      const waitMs = Number(options.wait) * 1000;
      if (!Number.isFinite(waitMs) || waitMs < 0) throw new UsageError(`--wait: expected a number of seconds, found "${options.wait}"`);
      const master = openDatabase(databaseUrl(config, config.master.database), { applicationName: 'lessonplan-verify' });
      try {
        const results: SlaveVerification[] = [];
        for (const name of slavesOf(config, names)) {
          const spec = config.slaves.find((s) => s.name === name)!.database;
          const slaveDb = openDatabase(databaseUrl(config, spec), { applicationName: 'lessonplan-verify' });
          try {
            ctx.say(`${name}: comparing with the master`);
            results.push({ slave: name, ...(await verifySlave(master, slaveDb, waitMs)) });
          } finally {
            await slaveDb.close();
          }
        }
        ctx.print(results.map(describeVerification).join('\n'), { slaves: results });
        if (results.some((r) => !r.same)) ctx.fail();
      } finally {
        await master.close();
      }
    });

  program
    .command('save')
    .description('save a commitblock from a JSON (or YAML) file through a slave; answered once applied there')
    .argument(
      '<file>',
      '{ "changes": [{ "class", "op": "upsert", "values" } | { "class", "op": "delete", "key" }], "idempotencyKey"?, "modelChecksum"? }',
    )
    .requiredOption('--slave <name>', 'the slave to save through')
    .option('--key <key>', "idempotency key (default: the file's own, else the sha256 of its content, so saving the same file twice saves once)")
    .action(async (file: string, options: { slave: string; key?: string }) => {
      const config = ctx.config();
      slavesOf(config, [options.slave]);
      const save = readSaveFile(file, options.key);
      const operator = await connectClient(config);
      try {
        const result = await saveThroughSlave(operator.client, options.slave, save, config.timings.saveTimeout).catch((err: unknown) => {
          // The operator gets the command that saves again with the same key, which is safe.
          if (!(err instanceof SaveNotAnsweredError)) throw err;
          const again = ['lessonplan', 'save', file, '--slave', options.slave, '--key', save.idempotencyKey].map(shellWord).join(' ');
          throw new Error(`${err.message}; to save again: ${again}`, { cause: err });
        });
        ctx.print(
          `saved as block ${result.seq}${result.duplicate ? ' (this key was saved before: nothing new)' : ''}; ${options.slave} is at block ${result.highWaterMark}`,
          { ...result, idempotencyKey: save.idempotencyKey },
        );
      } finally {
        await operator.close();
      }
    });

  const model = program.command('model').description("the master/slave cluster's model");
  model
    .command('deploy')
    .description('deploy a model file to the master, evolving its database in one transaction (slaves follow on their own)')
    .argument('<file>', 'the model (YAML or JSON)')
    .option('--dry-run', 'print the schema changes and change nothing')
    .option('--allow-destructive', 'allow drops, narrowing and key changes (their data is lost)')
    .action(async (file: string, options: { dryRun?: boolean; allowDestructive?: boolean }) => {
      const config = ctx.config();
      if (!config.master) throw new UsageError('the config has no master');
      const spec = readModelFile(file);
      const db = openDatabase(databaseUrl(config, config.master.database), { applicationName: 'lessonplan-cli' });
      try {
        await migrateReplica(db);
        const result = await deployModel(db, spec, { dryRun: options.dryRun, allowDestructive: options.allowDestructive });
        ctx.print(describeDeploy(result, options.dryRun === true), result);
      } finally {
        await db.close();
      }
    });
}

function describeDeploy(result: DeployResult, dryRun: boolean): string {
  if (result.previous === result.checksum) return `the master is at model ${result.checksum.slice(0, 12)} already: nothing to do`;
  const lines = [
    `${dryRun ? 'would deploy' : 'deployed'} model ${result.checksum.slice(0, 12)} (from ${result.previous?.slice(0, 12) ?? 'no model'}): ${result.changes.length} changes`,
    ...result.changes.map((c) => `  ${c.destructive ? 'DESTRUCTIVE ' : ''}${c.description}${c.why ? ` (${c.why})` : ''}`),
  ];
  if (dryRun && result.changes.some((c) => c.destructive)) lines.push('destructive changes are refused unless --allow-destructive');
  return lines.join('\n');
}

/** A word as a POSIX shell reads it back: quoted only when it needs to be. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

function readSaveFile(file: string, key?: string): SlaveSaveInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${file}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new UsageError(`${file}: not valid JSON or YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = saveFileSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`${file}: ${describeIssues(parsed.error)}`);
  const idempotencyKey = key ?? parsed.data.idempotencyKey ?? `file-${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
  return { ...parsed.data, changes: parsed.data.changes as SlaveSaveInput['changes'], idempotencyKey };
}
