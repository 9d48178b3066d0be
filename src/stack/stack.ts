/**
 * The embedded stack of one config: the Temporal dev server and PostgreSQL, started
 * and stopped together, their addresses recorded in <dataDir>/stack.json so that every
 * process of the cluster (workers, CLI, tests) finds them.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { localFixedPorts, type ClusterConfig } from '../config/schema';
import type { Logger } from '../logging';
import {
  ensureDatabase,
  embeddedPostgresUrl,
  postgresServerRunning,
  startPostgresServer,
  stopPostgresServer,
  type PostgresServerState,
} from './postgresServer';
import { isAlive } from './processes';
import { startTemporalOnPostgres } from './temporalOnPostgres';
import { startTemporalServer, stopTemporalServer, temporalServerRunning, type TemporalServerState } from './temporalServer';

export interface StackState {
  temporal?: TemporalServerState;
  postgres?: PostgresServerState;
}

export interface StackStatus {
  temporal: { embedded: boolean; running: boolean; address?: string; uiUrl?: string; pid?: number; namespace: string };
  postgres: { embedded: boolean; running: boolean; port?: number; pid?: number };
}

const stateFile = (config: ClusterConfig) => path.join(config.dataDir, 'stack.json');

export function readStackState(config: ClusterConfig): StackState {
  const file = stateFile(config);
  if (!existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8')) as StackState;
}

function writeStackState(config: ClusterConfig, state: StackState): void {
  mkdirSync(config.dataDir, { recursive: true });
  const file = stateFile(config);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Names of every database the config uses on the embedded server. */
function embeddedDatabases(config: ClusterConfig): string[] {
  const all = [
    config.operationalDatabase,
    config.reference.database,
    ...(config.master ? [config.master.database] : []),
    ...config.slaves.map((s) => s.database),
  ];
  return all.filter((db) => (db.url ?? config.postgres.url) === 'embedded').map((db) => db.name);
}

/** Whether the embedded Temporal server keeps its state on the embedded PostgreSQL. */
const temporalOnEmbeddedPostgres = (config: ClusterConfig) =>
  config.temporal.address === 'embedded' && config.temporal.embedded.server === 'postgres';

/** The embedded Temporal server's kind, in words. */
function serverName(temporal: TemporalServerState): string {
  return (temporal.kind ?? 'dev') === 'dev' ? 'Temporal dev server' : 'Temporal server on PostgreSQL';
}

/** What one start of the stack did: the stack's state, and how to take back what it started. */
export interface StackStart {
  state: StackState;
  /** Stops the parts this start started (none when every part already ran), newest first, and records them stopped. */
  undo(): Promise<void>;
}

/**
 * Starts whatever embedded part of the stack is not running yet (idempotent), creates
 * the configured databases, and returns the stack's state. A part that fails stops
 * what this call had started before it: no half-started stack.
 */
export async function startStack(config: ClusterConfig, log?: Logger): Promise<StackStart> {
  mkdirSync(config.dataDir, { recursive: true });
  const state = readStackState(config);
  // Two kinds keep their history in different places (SQLite, PostgreSQL): switching under a running one would lose sight of its runs.
  const wanted = config.temporal.embedded.server;
  if (config.temporal.address === 'embedded' && temporalServerRunning(state.temporal) && (state.temporal.kind ?? 'dev') !== wanted) {
    throw new Error(
      `the embedded server running is the ${serverName(state.temporal)}, but temporal.embedded.server is ${wanted}; ` +
        `stop it first with lessonplan dev down (its history stays in ${config.dataDir} for when the config goes back)`,
    );
  }
  const started: (keyof StackState)[] = [];
  const undo = async () => {
    for (const part of started.splice(0).reverse()) {
      if (part === 'temporal' && state.temporal) {
        log?.info(`stopping the ${serverName(state.temporal)} again`);
        await stopTemporalServer(state.temporal).catch((err) => log?.warn({ err }, `could not stop the ${serverName(state.temporal!)}`));
        state.temporal = { ...state.temporal, pid: 0 };
      }
      if (part === 'postgres' && state.postgres) {
        log?.info('stopping PostgreSQL again');
        await stopPostgresServer(state.postgres).catch((err) => log?.warn({ err }, 'could not stop PostgreSQL'));
        state.postgres = { ...state.postgres, pid: 0 };
      }
      writeStackState(config, state);
    }
  };
  // Ports picked for port 0 keep clear of every port the config gives a part of this machine.
  const fixedPorts = localFixedPorts(config);
  try {
    if (embeddedDatabases(config).length > 0 || temporalOnEmbeddedPostgres(config)) {
      if (!postgresServerRunning(state.postgres)) {
        log?.info('starting PostgreSQL (embedded)');
        state.postgres = await startPostgresServer({
          dataDir: config.dataDir,
          port: config.postgres.embedded.port,
          previous: state.postgres,
          avoidPorts: new Set([...fixedPorts, ...(state.temporal ? [state.temporal.port, state.temporal.uiPort ?? 0] : [])]),
        });
        started.push('postgres');
        writeStackState(config, state);
      }
      const serverUrl = embeddedPostgresUrl(state.postgres!);
      for (const name of embeddedDatabases(config)) {
        if (await ensureDatabase(serverUrl, name)) log?.info({ database: name }, 'created database');
      }
    }
    if (config.temporal.address === 'embedded' && !temporalServerRunning(state.temporal)) {
      const avoidPorts = new Set([...fixedPorts, ...(state.postgres ? [state.postgres.port] : [])]);
      if (temporalOnEmbeddedPostgres(config)) {
        log?.info('starting the Temporal server on the embedded PostgreSQL');
        state.temporal = await startTemporalOnPostgres({
          dataDir: config.dataDir,
          namespace: config.temporal.namespace,
          port: config.temporal.embedded.port,
          uiPort: config.temporal.embedded.uiPort,
          postgres: state.postgres!,
          previous: state.temporal,
          avoidPorts,
        });
      } else {
        log?.info('starting the Temporal dev server (embedded)');
        state.temporal = await startTemporalServer({
          dataDir: config.dataDir,
          namespace: config.temporal.namespace,
          port: config.temporal.embedded.port,
          uiPort: config.temporal.embedded.uiPort,
          previous: state.temporal,
          avoidPorts,
        });
      }
      started.push('temporal');
      writeStackState(config, state);
    }
  } catch (err) {
    await undo();
    throw err;
  }
  return { state, undo };
}

/** Starts whatever embedded part of the stack is not running yet (idempotent); see startStack. */
export async function stackUp(config: ClusterConfig, log?: Logger): Promise<StackState> {
  return (await startStack(config, log)).state;
}

/** Stops the embedded servers of this config; a no-op for parts not running. */
export async function stackDown(config: ClusterConfig, log?: Logger): Promise<void> {
  const state = readStackState(config);
  // The UI beside the server on PostgreSQL is stopped even when the server is gone already.
  const temporal: TemporalServerState | undefined = state.temporal;
  if (temporal && (isAlive(temporal.pid) || isAlive(temporal.uiPid))) {
    log?.info(`stopping the ${serverName(temporal)}`);
    await stopTemporalServer(temporal);
  }
  if (postgresServerRunning(state.postgres)) {
    log?.info('stopping PostgreSQL');
    await stopPostgresServer(state.postgres);
  }
  writeStackState(config, { temporal: state.temporal && { ...state.temporal, pid: 0 }, postgres: state.postgres && { ...state.postgres, pid: 0 } });
}

export function stackStatus(config: ClusterConfig): StackStatus {
  const state = readStackState(config);
  const temporalEmbedded = config.temporal.address === 'embedded';
  const temporalRunning = temporalServerRunning(state.temporal);
  return {
    temporal: temporalEmbedded
      ? {
          embedded: true,
          running: temporalRunning,
          namespace: config.temporal.namespace,
          ...(temporalRunning ? { address: state.temporal!.address, uiUrl: state.temporal!.uiUrl, pid: state.temporal!.pid } : {}),
        }
      : { embedded: false, running: true, address: config.temporal.address, namespace: config.temporal.namespace },
    postgres: {
      embedded: config.postgres.url === 'embedded',
      running: postgresServerRunning(state.postgres),
      ...(postgresServerRunning(state.postgres) ? { port: state.postgres.port, pid: state.postgres.pid } : {}),
    },
  };
}

/** Removes the embedded stack's state entirely (databases and Temporal history). */
export async function stackReset(config: ClusterConfig, log?: Logger): Promise<void> {
  await stackDown(config, log);
  rmSync(path.join(config.dataDir, 'postgres'), { recursive: true, force: true });
  rmSync(path.join(config.dataDir, 'temporal'), { recursive: true, force: true });
  rmSync(path.join(config.dataDir, 'temporal-server'), { recursive: true, force: true });
  rmSync(stateFile(config), { force: true });
}
