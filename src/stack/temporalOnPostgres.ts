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

const PASSWORD_ENV = 'LESSONPLAN_TEMPORAL_DB_PASSWORD';

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
  const password = readFileSync(options.postgres.passwordFile, 'utf8').trim();
  const serverUrl = embeddedPostgresUrl(options.postgres);
  for (const name of Object.values(TEMPORAL_DATABASES)) await ensureDatabase(serverUrl, name);
  await applySchema(tools.sqlTool, options.postgres, password, TEMPORAL_DATABASES.history, 'postgresql/v12/temporal');
  await applySchema(tools.sqlTool, options.postgres, password, TEMPORAL_DATABASES.visibility, 'postgresql/v12/visibility');

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
  writeFileSync(configFile, serverConfig(options.postgres.port, options.postgres.user, ports, path.join(dir, 'dynamic-config.yaml')), {
    mode: 0o600,
  });
  writeFileSync(path.join(dir, 'dynamic-config.yaml'), stringify(DYNAMIC_CONFIG));

  const logFile = path.join(dir, 'server.log');
  const logStart = logLength(logFile);
  const pid = spawnDetached(tools.server, ['--config-file', configFile, '--allow-no-auth', 'start'], {
    logFile,
    cwd: dir,
    env: { ...process.env, [PASSWORD_ENV]: password },
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

/** Creates the schema's version tables once, then brings the schema to the version the tool embeds. */
async function applySchema(sqlTool: string, postgres: PostgresServerState, password: string, database: string, schemaName: string): Promise<void> {
  const common = [
    '--plugin',
    'postgres12',
    '--endpoint',
    '127.0.0.1',
    '--port',
    String(postgres.port),
    '--user',
    postgres.user,
    '--database',
    database,
  ];
  const env = { SQL_PASSWORD: password };
  const client = new pg.Client({ connectionString: embeddedPostgresUrl(postgres, database) });
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

function serverConfig(
  pgPort: number,
  user: string,
  ports: Record<'frontend' | 'history' | 'matching' | 'worker', { grpcPort: number; membershipPort: number; httpPort?: number }>,
  dynamicConfigFile: string,
): string {
  const store = (database: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: `127.0.0.1:${pgPort}`,
      connectProtocol: 'tcp',
      user,
      // Filled in by the server from its environment (the file's first line enables that).
      password: `{{ env "${PASSWORD_ENV}" }}`,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
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
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: Object.fromEntries(Object.entries(ports).map(([service, rpc]) => [service, { rpc: { ...rpc, bindOnLocalHost: true } }])),
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${ports.frontend.grpcPort}` },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: dynamicConfigFile, pollInterval: '10s' },
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

async function ensureNamespace(connection: Connection, namespace: string): Promise<void> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
  } catch (err) {
    if ((err as { code?: number }).code !== 5) throw err; // gRPC NOT_FOUND: not registered yet
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(RETENTION_SECONDS * 1000),
    });
  }
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.values(searchAttributes).filter((key) => !(key.name in (customAttributes ?? {})));
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!])),
    });
  }
}
