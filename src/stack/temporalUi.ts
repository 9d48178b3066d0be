/**
 * The Temporal Web UI beside the Temporal server on PostgreSQL: the ui-server built from
 * its Go module (github.com/temporalio/ui-server/v2, pinned in tools/temporal-ui/go.mod,
 * built under .tools/ by scripts/setup.sh), which serves the UI's assets and talks to the
 * frontend over gRPC, as the temporalio/ui image does in production. The dev server has
 * this UI built in; the production server has none of its own.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { choosePort, waitForPort } from './ports';
import { isAlive, logLength, reasonInLog, spawnDetached, stopProcessGroup } from './processes';
import { temporalUiServer } from './toolPaths';

/** The environment name of the config file the UI server reads (`<env>.yaml` in its config folder). */
const UI_ENVIRONMENT = 'lessonplan';

export interface TemporalUiOptions {
  /** The folder for the UI's config and log. */
  dir: string;
  /** The frontend it talks to, host:port. */
  frontend: string;
  namespace: string;
  /** Preferred port; 0 picks a free one (the previous one first). */
  port: number;
  previousPort?: number;
  avoidPorts: Set<number>;
}

export interface TemporalUiState {
  pid: number;
  port: number;
  url: string;
}

export async function startTemporalUi(options: TemporalUiOptions): Promise<TemporalUiState> {
  const port = await choosePort(options.port, 'temporal.embedded.uiPort', options.previousPort, options.avoidPorts);
  const url = `http://127.0.0.1:${port}`;
  const args = writeTemporalUiConfig(options.dir, { frontend: options.frontend, namespace: options.namespace, host: '127.0.0.1', port, origin: url });
  const logFile = path.join(options.dir, 'ui.log');
  const logStart = logLength(logFile);
  const pid = spawnDetached(temporalUiServer().server, args, { logFile, cwd: options.dir });
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if (!isAlive(pid)) throw new Error(`the Temporal UI server exited while starting; its log (${logFile}) says:\n${reasonInLog(logFile, logStart)}`);
    if (await waitForPort(port, 500)) return { pid, port, url };
  }
  await stopProcessGroup(pid);
  throw new Error(`the Temporal UI server did not listen on ${url} within 30 s; see ${logFile}`);
}

export interface TemporalUiConfigOptions {
  /** The frontend, host:port. */
  frontend: string;
  namespace: string;
  /** The address it listens on (127.0.0.1: this host only). */
  host: string;
  port: number;
  /** The address browsers open it by, the one origin allowed to post to it. */
  origin: string;
}

/**
 * Writes the UI server's config under `dir` and returns the UI server's arguments. Write
 * actions stay on: operators signal halted runs from it.
 */
export function writeTemporalUiConfig(dir: string, options: TemporalUiConfigOptions): string[] {
  const configDir = path.join(dir, 'config');
  mkdirSync(configDir, { recursive: true });
  const config = {
    temporalGrpcAddress: options.frontend,
    host: options.host,
    port: options.port,
    enableUi: true,
    defaultNamespace: options.namespace,
    cors: { allowOrigins: [options.origin], cookieInsecure: options.origin.startsWith('http:') },
    disableNewsFetch: true,
    notifyOnNewVersion: false,
    refreshInterval: '0s',
    auth: { enabled: false },
  };
  writeFileSync(path.join(configDir, `${UI_ENVIRONMENT}.yaml`), stringify(config));
  return ['--root', dir, '--config', 'config', '--env', UI_ENVIRONMENT, 'start'];
}
