/**
 * `lessonplan temporal ...`: a Temporal server lessonplan does not embed. `schema` and
 * `register` are what an operator of their own server runs once (and again on an
 * upgrade), as the embedded stack does at each start; `serve` and `ui` run the server on a
 * given PostgreSQL and its Web UI in the foreground, as docker-compose.yml does.
 */
import { isIPv4 } from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { execa } from 'execa';
import type { ClusterConfig } from '../config/schema';
import type { Command } from 'commander';
import { ensureDatabase } from '../stack/postgresServer';
import { applyTemporalSchemas, ensureNamespace, TEMPORAL_DATABASES, type TemporalDatabaseEndpoint } from '../stack/temporalOnPostgres';
import { inForeground } from '../stack/processes';
import { serveTemporal } from '../stack/temporalServe';
import { writeTemporalUiConfig } from '../stack/temporalUi';
import { databaseUrl, temporalEndpoint } from '../stack/endpoints';
import { temporalServerTools, temporalUiServer } from '../stack/toolPaths';
import { UsageError, type CommandContext } from './commandContext';

/** Where the config's PostgreSQL server is, with the password from its environment variable. */
function givenPostgres(config: ClusterConfig, command: string): { server: URL; endpoint: TemporalDatabaseEndpoint } {
  if (config.postgres.url === 'embedded')
    throw new UsageError(
      `temporal ${command}: postgres.url is "embedded"; the embedded stack runs its own Temporal server (temporal.embedded.server: postgres)`,
    );
  const server = new URL(databaseUrl(config, { name: 'postgres' }));
  return {
    server,
    endpoint: {
      host: server.hostname,
      port: Number(server.port || 5432),
      user: decodeURIComponent(server.username),
      password: decodeURIComponent(server.password),
    },
  };
}

async function ensureTemporalDatabases(server: URL, say: (line: string) => void): Promise<void> {
  for (const name of Object.values(TEMPORAL_DATABASES)) {
    if (await ensureDatabase(server.toString(), name)) say(`created database ${name}`);
  }
}

/** The frontend's port: the one temporal.address names. */
function frontendPort(config: ClusterConfig): number {
  if (config.temporal.address === 'embedded') throw new UsageError('temporal.address is "embedded": give the host:port this server is reached at');
  return Number(config.temporal.address.split(':').at(-1));
}

function ipOption(option: string, value: string): string {
  if (!isIPv4(value)) throw new UsageError(`${option}: expected an IPv4 address such as 10.0.0.5 or 0.0.0.0, got "${value}"`);
  return value;
}

export function registerTemporalCommands(program: Command, ctx: CommandContext): void {
  const temporal = program
    .command('temporal')
    .description("a Temporal server of your own: its PostgreSQL schemas, lessonplan's namespace and search attributes");

  temporal
    .command('schema')
    .description("create Temporal's databases on the config's PostgreSQL server (postgres.url) if missing, and apply or upgrade their schemas")
    .action(async () => {
      const config = ctx.config();
      const { server, endpoint } = givenPostgres(config, 'schema');
      await ensureTemporalDatabases(server, ctx.say);
      const tools = temporalServerTools();
      await applyTemporalSchemas(tools.sqlTool, endpoint);
      ctx.print(`databases ${Object.values(TEMPORAL_DATABASES).join(', ')} at the schema of Temporal ${tools.version}`, {
        databases: Object.values(TEMPORAL_DATABASES),
        temporalServerVersion: tools.version,
      });
    });

  temporal
    .command('register')
    .description("register the config's namespace (7-day retention) and lessonplan's search attributes where missing, on temporal.address")
    .action(async () => {
      const config = ctx.config();
      const { address, namespace } = temporalEndpoint(config);
      const connection = await Connection.connect({ address });
      try {
        const done = await ensureNamespace(connection, namespace);
        const added = done.searchAttributesAdded;
        ctx.print(
          `namespace ${namespace} on ${address}: ${done.namespaceCreated ? 'registered' : 'already there'}; search attributes ${added.length ? `added: ${added.join(', ')}` : 'all there'}`,
          { address, namespace, ...done },
        );
      } finally {
        await connection.close();
      }
    });

  temporal
    .command('serve')
    .description(
      "run the Temporal server on the config's PostgreSQL (postgres.url) in the foreground: databases, schemas, namespace and search attributes, listening on --bind at temporal.address's port",
    )
    .option('--bind <ip>', 'the address to listen on: 127.0.0.1 (this host only), an address of this host, or 0.0.0.0', '127.0.0.1')
    .option('--broadcast <ip>', "the address other hosts reach this one by (default: --bind, or for 0.0.0.0 this host's first external IPv4 address)")
    .action(async (options: { bind: string; broadcast?: string }) => {
      const config = ctx.config();
      const bindIp = ipOption('--bind', options.bind);
      const broadcastAddress = options.broadcast === undefined ? undefined : ipOption('--broadcast', options.broadcast);
      const port = frontendPort(config);
      const { server, endpoint } = givenPostgres(config, 'serve');
      await ensureTemporalDatabases(server, ctx.say);
      const clean = await serveTemporal({
        dir: path.join(config.dataDir, 'temporal-server'),
        namespace: config.temporal.namespace,
        database: endpoint,
        bindIp,
        ...(broadcastAddress ? { broadcastAddress } : {}),
        frontendPort: port,
        say: (line) => console.error(line),
      });
      if (!clean) ctx.fail();
    });

  temporal
    .command('ui')
    .description('run the Temporal Web UI server for temporal.address in the foreground')
    .option('--bind <ip>', 'the address to listen on', '127.0.0.1')
    .option('--port <port>', 'the port to listen on', '8080')
    .option('--origin <url>', 'the address browsers open it by (default: http://<bind>:<port>)')
    .action(async (options: { bind: string; port: string; origin?: string }) => {
      const config = ctx.config();
      const host = ipOption('--bind', options.bind);
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new UsageError(`--port: expected a port between 1 and 65535, got "${options.port}"`);
      const { address, namespace } = temporalEndpoint(config);
      const dir = path.join(config.dataDir, 'temporal-ui');
      const args = writeTemporalUiConfig(dir, { frontend: address, namespace, host, port, origin: options.origin ?? `http://${host}:${port}` });
      console.error(`Temporal UI ${temporalUiServer().version} on http://${host}:${port}, for ${address}`);
      const ui = execa(temporalUiServer().server, args, { stdio: ['ignore', 'inherit', 'inherit'], reject: false, cwd: dir });
      if (!(await inForeground(ui))) ctx.fail();
    });
}
