/**
 * Shared entry point of the worker processes: reads --config (or $LESSONPLAN_CONFIG),
 * --name (the satellite or slave this process serves) and --metrics (host:port of its
 * Prometheus endpoint), runs the roles until SIGINT/SIGTERM, and exits non-zero with
 * one clear line when it cannot start.
 */
import { parseArgs } from 'node:util';
import { checkProgramsOfRoles } from '../config/commands';
import { ConfigError, configFileFrom, loadConfig } from '../config/load';
import { createLogger } from '../logging';
import { allRoles, type Role } from './roles';
import { startWorkers } from './runWorkers';
import { MetricsAddressError } from './runtime';

export async function workerMain(role: Role | 'all-in-one', argv = process.argv.slice(2)): Promise<void> {
  const log = createLogger(`worker:${role}`);
  try {
    const { values } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, name: { type: 'string' }, metrics: { type: 'string' } },
      strict: true,
    });
    const file = configFileFrom(values.config);
    const config = loadConfig(file);
    const roles = role === 'all-in-one' ? allRoles(config) : [{ role, name: values.name ?? process.env.LESSONPLAN_NAME }];
    checkProgramsOfRoles(config, file, roles);
    const workers = await startWorkers(config, roles, log, { metricsAddress: values.metrics });
    await workers.done;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof MetricsAddressError) log.error(err.message);
    else log.error({ err }, `the ${role} worker stopped with an error: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
