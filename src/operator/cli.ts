/**
 * The lessonplan command. Output for people goes to stdout (or JSON with --json);
 * logs go to stderr. Exit codes: 0 done, 1 failed, 2 bad usage or bad config.
 */
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, configFileFrom, loadConfig } from '../config/load';
import { checkProgramsOfRoles } from '../config/commands';
import type { ClusterConfig } from '../config/schema';
import { createLogger } from '../logging';
import { stackDown, stackReset, stackStatus } from '../stack/stack';
import { clusterDown, clusterStatus } from '../cluster/localCluster';
import { devUp } from '../cluster/devUp';
import { ROLES, allRoles, type Role } from '../workers/roles';
import { startWorkers } from '../workers/runWorkers';
import { runMainJob } from './mainJob';
import { EXAMPLES, exampleNamed } from './examples';
import { registerLessonCommands } from './lessonCommands';
import { UsageError } from './commandContext';
import { registerSlaveCommands } from './slaveCommands';
import { registerScheduleCommands } from './scheduleCommands';
import { registerWindowCommands } from './windowCommands';
import { registerTemporalCommands } from './temporalCommands';
import { registerInboxCommands } from './inboxCommands';
import { UnknownSlaveError } from './slaveSync';
import { ModelError } from '../model/modelFile';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

interface GlobalOptions {
  config?: string;
  json?: boolean;
}

export function buildProgram(): Command {
  const program = new Command('lessonplan')
    .description('Zero-downtime data rollouts to load-balanced satellites, and master/slave commitblock sync, on Temporal')
    .addOption(new Option('-c, --config <file>', 'cluster config file (default: $LESSONPLAN_CONFIG or config/local-demo.yaml)'))
    .option('--json', 'print machine-readable JSON instead of text')
    // Bad usage is one line, with where to look: subcommands inherit this.
    .configureOutput({ outputError: (message, write) => write(`${message.trimEnd()} (see --help)\n`) })
    .exitOverride();

  const config = () => loadConfig(configFileFrom(program.opts<GlobalOptions>().config));
  const json = () => program.opts<GlobalOptions>().json === true;
  const print = (text: string, data: unknown) => console.log(json() ? JSON.stringify(data, null, 2) : text);

  program
    .command('run')
    .description('the main job: bring up the embedded stack and the cluster, and run it end to end')
    .option('--example <name>', `run an example cluster instead of --config: ${Object.keys(EXAMPLES).join(', ')}`)
    .action(async (options: { example?: string }) => {
      const example = options.example === undefined ? undefined : exampleNamed(options.example);
      const cfg = example ? loadConfig(example.configFile) : config();
      const result = await runMainJob(cfg, { log: createLogger('lessonplan'), out: (line) => !json() && console.log(line) }, example);
      if (json()) console.log(JSON.stringify(result, null, 2));
      if (!result.ok) process.exitCode = EXIT.failed;
    });

  const dev = program
    .command('dev')
    .description(
      'the embedded local stack (Temporal dev server with its Web UI, PostgreSQL) and the local cluster (Apache satellites behind HAProxy)',
    );
  dev
    .command('up')
    .description('start the embedded stack and the local cluster (idempotent; all or nothing) and say where they are')
    .action(async () => {
      const cfg = config();
      await devUp(cfg, createLogger('lessonplan'));
      await printStatus(cfg, print);
    });
  dev
    .command('down')
    .description('stop the embedded stack (data stays, for the next up)')
    .action(async () => {
      const cfg = config();
      const log = createLogger('lessonplan');
      await clusterDown(cfg, log);
      await stackDown(cfg, log);
      print('stack and cluster stopped', { stopped: true });
    });
  dev
    .command('status')
    .description('show whether the embedded stack runs, and where')
    .action(async () => {
      const cfg = config();
      await printStatus(cfg, print);
      const status = stackStatus(cfg);
      if (!status.temporal.running || !status.postgres.running) process.exitCode = EXIT.failed;
    });
  dev
    .command('reset')
    .description('stop the embedded stack and delete its data (databases, Temporal history)')
    .requiredOption('--yes', 'confirm that the data is to be deleted')
    .action(async () => {
      const cfg = config();
      await clusterDown(cfg, createLogger('lessonplan'));
      await stackReset(cfg, createLogger('lessonplan'));
      print('stack stopped and its data deleted', { reset: true });
    });

  program
    .command('worker')
    .description('run the worker of one role until SIGINT/SIGTERM')
    .addArgument(new Command().createArgument('<role>', 'the role').choices([...ROLES, 'all-in-one']))
    .option('--name <name>', 'the satellite or slave this worker serves')
    .option('--metrics <host:port>', "serve Prometheus metrics there (default: the config's metrics.bindAddress)")
    .action(async (role: Role | 'all-in-one', options: { name?: string; metrics?: string }) => {
      const cfg = config();
      const roles = role === 'all-in-one' ? allRoles(cfg) : [{ role, name: options.name }];
      checkProgramsOfRoles(cfg, configFileFrom(program.opts<GlobalOptions>().config), roles);
      const workers = await startWorkers(cfg, roles, createLogger(`worker:${role}`), { metricsAddress: options.metrics });
      await workers.done;
    });

  program
    .command('config')
    .description('check a config file and print it as loaded (defaults filled in, paths resolved)')
    .argument('[file]', 'the config file (default: --config, $LESSONPLAN_CONFIG or the local demo)')
    .option('--role <role>', "also check that this machine has the programs of that role's commands (e.g. reference)")
    .action((file: string | undefined, options: { role?: Role }) => {
      const cfg = loadConfig(configFileFrom(file ?? program.opts<GlobalOptions>().config));
      if (options.role) checkProgramsOfRoles(cfg, configFileFrom(file ?? program.opts<GlobalOptions>().config), [{ role: options.role }]);
      print(
        `${configFileFrom(file ?? program.opts<GlobalOptions>().config)}: valid (${cfg.satellites.length} satellites, ${cfg.slaves.length} slaves)`,
        cfg,
      );
    });

  const context = {
    config,
    print,
    say: (line: string) => void (!json() && console.log(line)),
    fail: () => void (process.exitCode = EXIT.failed),
    json,
  };
  registerInboxCommands(program, context);
  registerLessonCommands(program, context);
  registerSlaveCommands(program, context);
  registerScheduleCommands(program, context);
  registerWindowCommands(program, context);
  registerTemporalCommands(program, context);

  return program;
}

async function printStatus(config: ClusterConfig, print: (text: string, data: unknown) => void): Promise<void> {
  const status = stackStatus(config);
  const cluster = await clusterStatus(config);
  const t = status.temporal;
  const p = status.postgres;
  const lb = config.loadBalancer;
  const lines = [
    `Temporal     ${t.running ? `running at ${t.address} (namespace ${t.namespace})` : 'not running'}${t.embedded ? ' [embedded]' : ''}`,
    ...(t.uiUrl ? [`Temporal UI  ${t.uiUrl}`] : []),
    `PostgreSQL   ${p.embedded ? (p.running ? `running on 127.0.0.1:${p.port} [embedded]` : 'not running [embedded]') : 'external (see config)'}`,
    `HAProxy      ${cluster.loadBalancer}${lb.kind === 'haproxy' ? ` (users: http://127.0.0.1:${lb.frontendPort}/)` : ''}`,
    ...cluster.satellites.map(
      (s) => `  ${s.name.padEnd(10)} ${s.group.padEnd(8)} Apache ${s.webServer.padEnd(8)} lesson ${s.lesson ?? '(none yet)'}`,
    ),
  ];
  print(lines.join('\n'), { ...status, cluster });
}

/** Runs the CLI and returns the exit code; errors become one clear line on stderr. */
export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander has already printed its message otherwise.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof ConfigError) {
      console.error(err.problems.map((p) => `error: ${p}`).join('\n'));
      return EXIT.usage;
    }
    if (err instanceof UsageError || err instanceof UnknownSlaveError || err instanceof ModelError) {
      console.error(
        err.message
          .split('\n')
          .map((line) => `error: ${line}`)
          .join('\n'),
      );
      return EXIT.usage;
    }
    // A refused update (a save) carries the reason in its cause.
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    if (cause && /Update failed/.test((err as Error).message)) {
      console.error(`error: ${cause}`);
      return EXIT.failed;
    }
    console.error(`error: ${(err as Error).message}`);
    return EXIT.failed;
  }
}
