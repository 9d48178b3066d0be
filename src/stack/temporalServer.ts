/**
 * The embedded Temporal server: the pinned Temporal CLI's dev server, with its Web UI,
 * its state in a SQLite file under the data folder (a restart keeps running
 * workflows), and lessonplan's search attributes registered.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { searchAttributes } from '../shared/names';
import { isAlive, logLength, reasonInLog, spawnDetached, stopProcessGroup } from './processes';
import { choosePort, waitForPort } from './ports';
import { temporalCliPath } from './toolPaths';

/** The dev server's names for search attribute types. */
const cliTypeName: Record<SearchAttributeType, string> = {
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

export interface TemporalServerState {
  pid: number;
  port: number;
  address: string;
  namespace: string;
  logFile: string;
  /** The CLI's dev server (SQLite, its own UI) or the Temporal server on PostgreSQL (temporalOnPostgres.ts); absent: dev. */
  kind?: 'dev' | 'postgres';
  /** The Web UI: the dev server's own, or the UI server beside the server on PostgreSQL (uiPid). */
  uiPort?: number;
  uiUrl?: string;
  uiPid?: number;
  /** The dev server's SQLite file. */
  dbFile?: string;
}

export interface TemporalServerOptions {
  dataDir: string;
  namespace: string;
  port: number;
  uiPort: number;
  previous?: TemporalServerState;
  /** Ports not to pick for port 0: those the config gives other parts. */
  avoidPorts?: Set<number>;
}

export async function startTemporalServer(options: TemporalServerOptions): Promise<TemporalServerState> {
  const dir = path.join(options.dataDir, 'temporal');
  mkdirSync(dir, { recursive: true });
  const avoid = new Set(options.avoidPorts);
  const port = await choosePort(options.port, 'temporal.embedded.port', options.previous?.port, avoid);
  // Neither is bound until the server starts: the UI's port must not be the frontend's.
  avoid.add(port);
  const uiPort = await choosePort(options.uiPort, 'temporal.embedded.uiPort', options.previous?.uiPort, avoid);
  const logFile = path.join(dir, 'server.log');
  const dbFile = path.join(dir, 'temporal.db');
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort)];
  args.push('--db-filename', dbFile, '--log-level', 'warn');
  if (options.namespace !== 'default') args.push('--namespace', options.namespace);
  for (const key of Object.values(searchAttributes)) args.push('--search-attribute', `${key.name}=${cliTypeName[key.type]}`);

  const logStart = logLength(logFile); // the log is appended to: this start's lines begin here
  const pid = spawnDetached(temporalCliPath(), args, { logFile, cwd: dir });
  const state: TemporalServerState = {
    pid,
    port,
    uiPort,
    address: `127.0.0.1:${port}`,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    namespace: options.namespace,
    logFile,
    dbFile,
  };
  try {
    await waitUntilServing(state, logStart, 60_000);
  } catch (err) {
    await stopProcessGroup(pid);
    throw err;
  }
  return state;
}

/** Resolves when the frontend answers gRPC and the UI accepts connections. */
async function waitUntilServing(state: TemporalServerState, logStart: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  let lastError: unknown;
  while (Date.now() < until) {
    if (!isAlive(state.pid)) {
      throw new Error(`the Temporal dev server exited while starting; its log (${state.logFile}) says:\n${reasonInLog(state.logFile, logStart)}`);
    }
    try {
      const connection = await Connection.connect({ address: state.address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: state.namespace });
      } finally {
        await connection.close();
      }
      if (await waitForPort(state.uiPort!, Math.max(0, until - Date.now()))) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `the Temporal dev server did not answer on ${state.address} within ${deadlineMs / 1000} s (${String(lastError)}); see ${state.logFile}`,
  );
}

export async function stopTemporalServer(state: TemporalServerState): Promise<void> {
  if (state.uiPid) await stopProcessGroup(state.uiPid);
  await stopProcessGroup(state.pid);
}

export function temporalServerRunning(state: TemporalServerState | undefined): state is TemporalServerState {
  return !!state && isAlive(state.pid);
}
