/**
 * The Temporal server on a PostgreSQL of the user's, in the foreground: what
 * `lessonplan temporal serve` runs on a host of its own (a container of docker-compose.yml,
 * a network namespace of the multi-host test). The same schemas, config and registration
 * as the embedded stack's server (temporalOnPostgres.ts), only listening where other hosts
 * reach it and ending with the process.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { execa } from 'execa';
import {
  applyTemporalSchemas,
  DEFAULT_TEMPORAL_PORTS,
  ensureNamespace,
  TEMPORAL_DB_PASSWORD_ENV,
  temporalDynamicConfig,
  temporalServerConfig,
  type TemporalDatabaseEndpoint,
} from './temporalOnPostgres';
import { inForeground } from './processes';
import { temporalServerTools } from './toolPaths';

export interface ServeTemporalOptions {
  /** Where the server's config files go. */
  dir: string;
  namespace: string;
  database: TemporalDatabaseEndpoint;
  /** The address the services listen on: 127.0.0.1 (this host only), an address of this host, or 0.0.0.0. */
  bindIp: string;
  /** The address other hosts reach this one by; default: bindIp, or for 0.0.0.0 this host's first external IPv4 address. */
  broadcastAddress?: string;
  frontendPort: number;
  say: (line: string) => void;
}

/** Runs the server until it exits (SIGTERM and SIGINT are passed on); true when it ended cleanly. */
export async function serveTemporal(options: ServeTemporalOptions): Promise<boolean> {
  const tools = temporalServerTools();
  mkdirSync(options.dir, { recursive: true });
  options.say(`applying the Temporal ${tools.version} schemas on ${options.database.host}:${options.database.port}`);
  await applyTemporalSchemas(tools.sqlTool, options.database);

  const loopback = options.bindIp === '127.0.0.1';
  const broadcastAddress = options.broadcastAddress ?? (options.bindIp === '0.0.0.0' ? externalIpv4() : options.bindIp);
  const dynamicConfigFile = path.join(options.dir, 'dynamic-config.yaml');
  const configFile = path.join(options.dir, 'config.yaml');
  writeFileSync(dynamicConfigFile, temporalDynamicConfig());
  writeFileSync(
    configFile,
    temporalServerConfig({
      database: { address: `${options.database.host}:${options.database.port}`, user: options.database.user },
      bind: loopback ? { loopback: true } : { ip: options.bindIp, broadcastAddress },
      ports: { ...DEFAULT_TEMPORAL_PORTS, frontend: { ...DEFAULT_TEMPORAL_PORTS.frontend, grpcPort: options.frontendPort } },
      dynamicConfigFile,
    }),
    { mode: 0o600 },
  );

  const server = execa(tools.server, ['--config-file', configFile, '--allow-no-auth', 'start'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { [TEMPORAL_DB_PASSWORD_ENV]: options.database.password },
    reject: false,
  });
  const ended = inForeground(server);
  const frontend = `${options.bindIp === '0.0.0.0' ? '127.0.0.1' : options.bindIp}:${options.frontendPort}`;
  const registered = await registerWhenUp(frontend, options.namespace, server).catch((err: unknown) => {
    options.say(
      `the namespace ${options.namespace} could not be registered (${String(err)}); run lessonplan temporal register once the server answers`,
    );
    return undefined;
  });
  if (registered) {
    const added = registered.searchAttributesAdded;
    options.say(
      `Temporal ${tools.version} serves ${broadcastAddress}:${options.frontendPort}; namespace ${options.namespace} ${registered.namespaceCreated ? 'registered' : 'there'}${added.length ? `, search attributes added: ${added.join(', ')}` : ''}`,
    );
  }
  return ended;
}

/** Registers the namespace once the frontend answers; undefined if the server ended first. */
async function registerWhenUp(address: string, namespace: string, server: { exitCode: number | null; signalCode: NodeJS.Signals | null }) {
  const until = Date.now() + 120_000;
  for (;;) {
    if (server.exitCode !== null || server.signalCode !== null) return undefined;
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        return await ensureNamespace(connection, namespace);
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function externalIpv4(): string {
  for (const addresses of Object.values(os.networkInterfaces())) {
    const found = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found) return found.address;
  }
  throw new Error('this host has no external IPv4 address to broadcast; give one with --broadcast');
}
