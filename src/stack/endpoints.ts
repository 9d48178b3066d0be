/**
 * Where the cluster's services are, for the config at hand: the embedded stack's
 * recorded addresses, or the servers the config names.
 */
import type { ClusterConfig, DatabaseConfig } from '../config/schema';
import { embeddedPostgresUrl, postgresServerRunning } from './postgresServer';
import { readStackState } from './stack';
import { temporalServerRunning } from './temporalServer';

export class StackNotRunningError extends Error {
  override readonly name = 'StackNotRunningError';
  constructor(part: string) {
    super(`the embedded ${part} is not running; start the stack with: lessonplan dev up`);
  }
}

export interface TemporalEndpoint {
  address: string;
  namespace: string;
  /** The Web UI, when known (the embedded dev server's). */
  uiUrl?: string;
}

export function temporalEndpoint(config: ClusterConfig): TemporalEndpoint {
  if (config.temporal.address !== 'embedded') return { address: config.temporal.address, namespace: config.temporal.namespace };
  const state = readStackState(config);
  if (!temporalServerRunning(state.temporal)) throw new StackNotRunningError('Temporal server');
  return { address: state.temporal.address, namespace: config.temporal.namespace, uiUrl: state.temporal.uiUrl };
}

/** The connection URL of one configured database (holds its password: never log it). */
export function databaseUrl(config: ClusterConfig, db: DatabaseConfig): string {
  const server = db.url ?? config.postgres.url;
  if (server === 'embedded') {
    const state = readStackState(config);
    if (!postgresServerRunning(state.postgres)) throw new StackNotRunningError('PostgreSQL');
    return embeddedPostgresUrl(state.postgres, db.name);
  }
  const url = new URL(server);
  url.pathname = `/${db.name}`;
  const passwordEnv = db.passwordEnv ?? config.postgres.passwordEnv;
  if (passwordEnv) {
    const password = process.env[passwordEnv];
    if (password === undefined) throw new Error(`the environment variable ${passwordEnv} (the password of database ${db.name}) is not set`);
    url.password = password;
  }
  return url.toString();
}

/**
 * Where the master's API is reached: HTTPS when `master.api.tls` is configured; for a slave
 * with a `masterAddress` (a port forward, a proxy), there instead.
 */
export function masterApiUrl(config: ClusterConfig, slave?: { masterAddress?: string | undefined }): string {
  const api = config.master?.api;
  if (!api) throw new Error('the config has no master');
  return `${api.tls ? 'https' : 'http'}://${slave?.masterAddress ?? `${api.host}:${api.port}`}`;
}
