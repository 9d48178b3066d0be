/**
 * `lessonplan dev up`: the embedded stack, then the local cluster, all or nothing.
 * What can be told beforehand (every folder it must create can be created, every fixed
 * port it must bind is free) is checked before anything starts; a part that fails
 * later stops what this up had started. Parts already running are left alone.
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import type { ClusterConfig } from '../config/schema';
import type { Logger } from '../logging';
import { apacheOf, apachePid } from '../activities/satellite/apache';
import { isOwnSatellite, servicesRunning } from '../activities/satellite/ownServices';
import { describeHolders, isPortFree, portHolders } from '../stack/ports';
import { postgresServerRunning } from '../stack/postgresServer';
import { readStackState, startStack, type StackState } from '../stack/stack';
import { temporalServerRunning } from '../stack/temporalServer';
import { clusterUp } from './localCluster';
import { haproxyPaths, haproxyPid } from './haproxy';

/** A dev up refused by its checks: nothing was started. `problems` holds one line per problem. */
export class DevUpRefused extends Error {
  override readonly name = 'DevUpRefused';
  constructor(readonly problems: string[]) {
    super(`dev up: nothing was started, because:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/**
 * Why `dir` cannot be created (or used), or undefined when it can: its nearest existing
 * part must be a folder this process may write in.
 */
export function folderProblem(dir: string): string | undefined {
  for (let existing = dir; ; existing = path.dirname(existing)) {
    let isFolder: boolean;
    try {
      isFolder = statSync(existing).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Missing, or below a file (ENOTDIR): look at the part above it.
      if ((code === 'ENOENT' || code === 'ENOTDIR') && path.dirname(existing) !== existing) continue;
      return `${existing}: ${(err as Error).message}`;
    }
    if (!isFolder) return `${existing} is a file`;
    try {
      accessSync(existing, constants.W_OK | constants.X_OK);
    } catch {
      return `${existing} is not writable`;
    }
    return undefined;
  }
}

/** Why the port cannot be bound, naming who holds it, or undefined when it is free. */
async function portProblem(port: number, setting: string, remedy: string): Promise<string | undefined> {
  if (await isPortFree(port)) return undefined;
  const holders = portHolders(port);
  const who = holders.length > 0 ? describeHolders(holders) : 'another process';
  return `port ${port} (${setting}) is taken by ${who}; stop that program, or ${remedy}`;
}

/** Everything that would make this dev up fail and can be told before starting anything. */
export async function checksBeforeUp(config: ClusterConfig): Promise<string[]> {
  const problems: string[] = [];
  const folder = (what: string, dir: string) => {
    const why = folderProblem(dir);
    if (why) problems.push(`${what} ${dir} cannot be created: ${why}`);
  };
  const port = async (what: string, port: number, setting: string, remedy: string) => {
    const why = await portProblem(port, setting, remedy);
    if (why) problems.push(`${what}${why}`);
  };
  const zeroPicks = (setting: string) => `set ${setting} to 0 to let lessonplan pick a free port`;
  const another = (setting: string) => `give ${setting} another port`;

  // The embedded stack: ports only when configured and the part does not run yet.
  folder('dataDir', config.dataDir);
  const state: StackState = readStackState(config);
  if (config.temporal.address === 'embedded' && !temporalServerRunning(state.temporal)) {
    const { port: grpc, uiPort } = config.temporal.embedded;
    if (grpc > 0) await port('', grpc, 'temporal.embedded.port', zeroPicks('temporal.embedded.port'));
    if (uiPort > 0) await port('', uiPort, 'temporal.embedded.uiPort', zeroPicks('temporal.embedded.uiPort'));
  }
  if (!postgresServerRunning(state.postgres) && config.postgres.embedded.port > 0) {
    await port('', config.postgres.embedded.port, 'postgres.embedded.port', zeroPicks('postgres.embedded.port'));
  }

  // The local cluster: a satellite's port only when its Apache does not run yet.
  config.satellites.forEach((s) => folder(`satellite ${s.name}: dataDir`, s.dataDir));
  for (const [i, s] of config.satellites.entries()) {
    if (isOwnSatellite(s) ? await servicesRunning(s) : apachePid(apacheOf(s), 'serve')) continue;
    await port(`satellite ${s.name}: `, s.webServer.port, `satellites[${i}].webServer.port`, another(`satellites[${i}].webServer.port`));
  }
  if (config.loadBalancer.kind === 'haproxy') {
    folder('HAProxy folder (beside loadBalancer.runtimeApi)', haproxyPaths(config).dir);
    if (!haproxyPid(config)) {
      await port('', config.loadBalancer.frontendPort, 'loadBalancer.frontendPort', another('loadBalancer.frontendPort'));
    }
  }
  return problems;
}

/**
 * Brings the embedded stack and the local cluster up (idempotent), or nothing: refused
 * with a DevUpRefused before starting anything when a check fails, and when a part
 * fails while starting, everything this call started is stopped again before the
 * error goes on.
 */
export async function devUp(config: ClusterConfig, log?: Logger): Promise<StackState> {
  const problems = await checksBeforeUp(config);
  if (problems.length > 0) throw new DevUpRefused(problems);
  const stack = await startStack(config, log);
  try {
    await clusterUp(config, log);
  } catch (err) {
    log?.warn({ err }, 'the local cluster did not start; stopping what this dev up started');
    await stack.undo();
    throw err;
  }
  return stack.state;
}
