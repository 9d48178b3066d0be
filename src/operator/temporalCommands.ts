/**
 * `lessonplan temporal schema` and `lessonplan temporal register`: what an operator of
 * their own Temporal server on PostgreSQL runs once (and again on an upgrade). The
 * embedded stack does both at each start; these do the same for a server lessonplan does
 * not start (docker-compose.yml runs them as one-shot services).
 */
import { Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { ensureDatabase } from '../stack/postgresServer';
import { applyTemporalSchemas, ensureNamespace, TEMPORAL_DATABASES } from '../stack/temporalOnPostgres';
import { databaseUrl, temporalEndpoint } from '../stack/endpoints';
import { temporalServerTools } from '../stack/toolPaths';
import { UsageError, type CommandContext } from './commandContext';

export function registerTemporalCommands(program: Command, ctx: CommandContext): void {
  const temporal = program
    .command('temporal')
    .description("a Temporal server of your own: its PostgreSQL schemas, lessonplan's namespace and search attributes");

  temporal
    .command('schema')
    .description("create Temporal's databases on the config's PostgreSQL server (postgres.url) if missing, and apply or upgrade their schemas")
    .action(async () => {
      const config = ctx.config();
      if (config.postgres.url === 'embedded')
        throw new UsageError('postgres.url is "embedded": the embedded stack applies these schemas itself (temporal.embedded.server: postgres)');
      const server = new URL(databaseUrl(config, { name: 'postgres' }));
      for (const name of Object.values(TEMPORAL_DATABASES)) {
        if (await ensureDatabase(server.toString(), name)) ctx.say(`created database ${name}`);
      }
      const tools = temporalServerTools();
      await applyTemporalSchemas(tools.sqlTool, {
        host: server.hostname,
        port: Number(server.port || 5432),
        user: decodeURIComponent(server.username),
        password: decodeURIComponent(server.password),
      });
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
}
