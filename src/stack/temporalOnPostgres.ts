/**
 * The Temporal server as production runs it: the server built from its Go module
 * (`go.temporal.io/server`, pinned in package.json as config.temporalServerVersion and
 * installed under .tools/ by scripts/setup.sh), its history and its visibility (advanced
 * visibility, the postgres12 plugin) in two databases of the embedded PostgreSQL, and
 * lessonplan's namespace and search attributes registered through the operator API, as
 * an operator of a real Temporal server would. Its Web UI is the ui-server beside it
 * (temporalUi.ts).
 *
 * Its schemas are applied with the server's own temporal-sql-tool (`setup-schema` once,
 * `update-schema` to the version the binary embeds on every start, which is how a server
 * upgrade migrates). The database password reaches the server and the tool by environment,
 * never by argument or by the config file.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { msToTs } from '@temporalio/common/lib/time';
import { execa } from 'execa';
import pg from 'pg';
import { stringify } from 'yaml';
import { searchAttributes } from '../shared/names';
import { embeddedPostgresUrl, ensureDatabase, type PostgresServerState } from './postgresServer';
import { choosePort } from './ports';
import { isAlive, logLength, reasonInLog, spawnDetached, stopProcessGroup } from './processes';
import type { TemporalServerState } from './temporalServer';
import { startTemporalUi } from './temporalUi';
import { temporalServerTools } from './toolPaths';

/** The two databases of the embedded PostgreSQL that hold Temporal's state. */
export const TEMPORAL_DATABASES = { history: 'temporal', visibility: 'temporal_visibility' } as const;

/** How long a closed workflow's history is kept in the namespace lessonplan registers. */
const RETENTION_SECONDS = 7 * 24 * 3600;

/** The environment variable the server reads its database password from. */
export const TEMPORAL_DB_PASSWORD_ENV = 'LESSONPLAN_TEMPORAL_DB_PASSWORD';

export interface TemporalOnPostgresOptions {
  dataDir: string;
  namespace: string;
  /** The frontend's preferred port; 0 picks a free one. */
  port: number;
  /** The Web UI's preferred port; 0 picks a free one. */
  uiPort: number;
  postgres: PostgresServerState;
  previous?: TemporalServerState;
  avoidPorts?: Set<number>;
}

export async function startTemporalOnPostgres(options: TemporalOnPostgresOptions): Promise<TemporalServerState> {
  const dir = path.join(options.dataDir, 'temporal-server');
  mkdirSync(dir, { recursive: true });
  const tools = temporalServerTools();
  // A UI left by a server that died would hold its port: it goes before the new pair starts.
  if (options.previous?.uiPid && isAlive(options.previous.uiPid)) await stopProcessGroup(options.previous.uiPid);
  const password = readFileSync(options.postgres.passwordFile, 'utf8').trim();
  const serverUrl = embeddedPostgresUrl(options.postgres);
  for (const name of Object.values(TEMPORAL_DATABASES)) await ensureDatabase(serverUrl, name);
  await applyTemporalSchemas(tools.sqlTool, { host: '127.0.0.1', port: options.postgres.port, user: options.postgres.user, password });

  // Every service listens somewhere; none of the ports may be another part's.
  const avoid = new Set(options.avoidPorts);
  const pick = async (preferred: number, setting: string, previous?: number) => {
    const port = await choosePort(preferred, setting, previous, avoid);
    avoid.add(port);
    return port;
  };
  const port = await pick(options.port, 'temporal.embedded.port', options.previous?.port);
  const ports = {
    frontend: { grpcPort: port, membershipPort: await pick(0, 'the frontend membership port'), httpPort: await pick(0, 'the frontend HTTP port') },
    history: { grpcPort: await pick(0, 'the history service port'), membershipPort: await pick(0, 'the history membership port') },
    matching: { grpcPort: await pick(0, 'the matching service port'), membershipPort: await pick(0, 'the matching membership port') },
    worker: { grpcPort: await pick(0, 'the worker service port'), membershipPort: await pick(0, 'the worker membership port') },
  };
  const configFile = path.join(dir, 'config.yaml');
  const dynamicConfigFile = path.join(dir, 'dynamic-config.yaml');
  const serverConfig = temporalServerConfig({
    database: { address: `127.0.0.1:${options.postgres.port}`, user: options.postgres.user },
    bind: { loopback: true },
    ports,
    dynamicConfigFile,
  });
  writeFileSync(configFile, serverConfig, { mode: 0o600 });
  writeFileSync(dynamicConfigFile, temporalDynamicConfig());

  const logFile = path.join(dir, 'server.log');
  const logStart = logLength(logFile);
  const pid = spawnDetached(tools.server, ['--config-file', configFile, '--allow-no-auth', 'start'], {
    logFile,
    cwd: dir,
    env: { ...process.env, [TEMPORAL_DB_PASSWORD_ENV]: password },
  });
  const state: TemporalServerState = {
    pid,
    port,
    address: `127.0.0.1:${port}`,
    namespace: options.namespace,
    logFile,
    kind: 'postgres',
  };
  try {
    await registerNamespace(state, logStart, 90_000);
    const ui = await startTemporalUi({
      dir: path.join(dir, 'ui'),
      frontend: state.address,
      namespace: options.namespace,
      port: options.uiPort,
      previousPort: options.previous?.uiPort,
      avoidPorts: avoid,
    });
    Object.assign(state, { uiPid: ui.pid, uiPort: ui.port, uiUrl: ui.url });
  } catch (err) {
    await stopProcessGroup(pid);
    throw err;
  }
  return state;
}

/** The PostgreSQL server holding Temporal's databases, and who connects to it. */
export interface TemporalDatabaseEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** The schemas temporal-sql-tool embeds, by database: history and advanced visibility (postgres12 plugin). */
export const TEMPORAL_SCHEMAS = { history: 'postgresql/v12/temporal', visibility: 'postgresql/v12/visibility' } as const;

/** Applies (once) and upgrades both schemas; what a server upgrade needs before the new binary starts. */
export async function applyTemporalSchemas(sqlTool: string, endpoint: TemporalDatabaseEndpoint): Promise<void> {
  await applySchema(sqlTool, endpoint, TEMPORAL_DATABASES.history, TEMPORAL_SCHEMAS.history);
  await applySchema(sqlTool, endpoint, TEMPORAL_DATABASES.visibility, TEMPORAL_SCHEMAS.visibility);
}

/** Creates the schema's version tables once, then brings the schema to the version the tool embeds. */
async function applySchema(sqlTool: string, endpoint: TemporalDatabaseEndpoint, database: string, schemaName: string): Promise<void> {
  const common = [
    '--plugin',
    'postgres12',
    '--endpoint',
    endpoint.host,
    '--port',
    String(endpoint.port),
    '--user',
    endpoint.user,
    '--database',
    database,
  ];
  const env = { SQL_PASSWORD: endpoint.password };
  const client = new pg.Client({ host: endpoint.host, port: endpoint.port, user: endpoint.user, password: endpoint.password, database });
  await client.connect();
  let versioned: boolean;
  try {
    versioned = (await client.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version'")).rowCount === 1;
  } finally {
    await client.end();
  }
  const run = async (args: string[]) => {
    const result = await execa(sqlTool, [...common, ...args], { env, reject: false, stdin: 'ignore' });
    if (result.exitCode !== 0) {
      throw new Error(
        `temporal-sql-tool ${args[0]} of database "${database}" failed (exit ${result.exitCode}): ${(result.stderr || result.stdout).trim().slice(-2000)}`,
      );
    }
  };
  if (!versioned) await run(['setup-schema', '--version', '0.0']);
  await run(['update-schema', '--schema-name', schemaName]);
}

/** Dynamic config: what the defaults of a large cluster get wrong for lessonplan's own server. */
const DYNAMIC_CONFIG = {
  // A search attribute registered a moment ago is usable at once (the server's cache would otherwise refresh later).
  'system.forceSearchAttributesCacheRefreshOnRead': [{ value: true, constraints: {} }],
};

/** The dynamic config file's text. */
export function temporalDynamicConfig(): string {
  return stringify(DYNAMIC_CONFIG);
}

/** The ports of the server's four services; the frontend also serves HTTP. */
export type TemporalServicePorts = Record<
  'frontend' | 'history' | 'matching' | 'worker',
  { grpcPort: number; membershipPort: number; httpPort?: number }
>;

/** The ports a Temporal server uses by default, for a host of its own (docker-compose.yml). */
export const DEFAULT_TEMPORAL_PORTS: TemporalServicePorts = {
  frontend: { grpcPort: 7233, membershipPort: 6933, httpPort: 7243 },
  history: { grpcPort: 7234, membershipPort: 6934 },
  matching: { grpcPort: 7235, membershipPort: 6935 },
  worker: { grpcPort: 7239, membershipPort: 6939 },
};

export interface TemporalServerConfigOptions {
  /** host:port of the PostgreSQL server, and the user. */
  database: { address: string; user: string };
  /** Where the services listen: loopback (this host only), or an address other hosts reach. */
  bind: { loopback: true } | { ip: string; broadcastAddress: string };
  ports: TemporalServicePorts;
  dynamicConfigFile: string;
}

/**
 * The server's config file. The password is never in it: the server fills it in from its
 * environment (TEMPORAL_DB_PASSWORD_ENV), as it may any other value written as a template.
 */
export function temporalServerConfig(options: TemporalServerConfigOptions): string {
  const store = (database: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: options.database.address,
      connectProtocol: 'tcp',
      user: options.database.user,
      // Filled in by the server from its environment (the file's first line enables that).
      password: `{{ env "${TEMPORAL_DB_PASSWORD_ENV}" }}`,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const bind = 'loopback' in options.bind ? { bindOnLocalHost: true } : { bindOnIP: options.bind.ip };
  const broadcastAddress = 'loopback' in options.bind ? '127.0.0.1' : options.bind.broadcastAddress;
  const config = {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: 4,
      datastores: {
        'postgres-default': store(TEMPORAL_DATABASES.history, 20),
        'postgres-visibility': store(TEMPORAL_DATABASES.visibility, 4),
      },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress } },
    services: Object.fromEntries(Object.entries(options.ports).map(([service, rpc]) => [service, { rpc: { ...rpc, ...bind } }])),
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `${broadcastAddress}:${options.ports.frontend.grpcPort}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: options.dynamicConfigFile, pollInterval: '10s' },
  };
  return `# enable-template\n${stringify(config)}`;
}

/**
 * Waits for the frontend, then registers the namespace and lessonplan's search attributes
 * where they are missing (a restart finds them in the database).
 */
async function registerNamespace(state: TemporalServerState, logStart: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  let lastError: unknown;
  while (Date.now() < until) {
    if (!isAlive(state.pid)) {
      throw new Error(`the Temporal server exited while starting; its log (${state.logFile}) says:\n${reasonInLog(state.logFile, logStart)}`);
    }
    try {
      const connection = await Connection.connect({ address: state.address, connectTimeout: 1_000 });
      try {
        await ensureNamespace(connection, state.namespace);
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(
    `the Temporal server did not answer on ${state.address} within ${deadlineMs / 1000} s (${String(lastError)}); see ${state.logFile}`,
  );
}

/** What registering found and did: whether the namespace was new, and which search attributes were added. */
export interface NamespaceRegistration {
  namespaceCreated: boolean;
  searchAttributesAdded: string[];
}

/**
 * Registers the namespace (7-day retention) and lessonplan's search attributes where they
 * are missing, on any Temporal server; a second run changes nothing.
 */
export async function ensureNamespace(connection: Connection, namespace: string): Promise<NamespaceRegistration> {
  let namespaceCreated = false;
  try {
    await connection.workflowService.describeNamespace({ namespace });
  } catch (err) {
    if ((err as { code?: number }).code !== 5) throw err; // gRPC NOT_FOUND: not registered yet
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(RETENTION_SECONDS * 1000),
    });
    namespaceCreated = true;
  }
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.values(searchAttributes).filter((key) => !(key.name in (customAttributes ?? {})));
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!])),
    });
  }
  return { namespaceCreated, searchAttributesAdded: missing.map((key) => key.name) };
}
