/**
 * PostgreSQL's own backup tools (Debian's 15 line, matching the embedded server):
 * pg_dump in custom format and pg_restore. The password goes through the environment,
 * never the command line (visible in ps) or a log line.
 */
import { execa } from 'execa';
import { pgToolPath } from '../stack/toolPaths';

function withoutPassword(connectionString: string): { dbname: string; env: Record<string, string> } {
  const url = new URL(connectionString);
  const password = decodeURIComponent(url.password);
  url.password = '';
  return { dbname: url.toString(), env: password ? { PGPASSWORD: password } : {} };
}

async function run(tool: 'pg_dump' | 'pg_restore', args: string[], connectionString: string, what: string, signal?: AbortSignal): Promise<void> {
  const { dbname, env } = withoutPassword(connectionString);
  const result = await execa(pgToolPath(tool), [...args, `--dbname=${dbname}`], {
    reject: false,
    all: true,
    stdin: 'ignore',
    cancelSignal: signal,
    env,
  });
  if (result.exitCode !== 0) {
    throw new Error(`${tool} of ${what} failed (exit ${result.exitCode}): ${String(result.all).trim().split('\n').slice(-3).join(' | ')}`);
  }
}

/** A custom-format dump of the database into `file`. */
export function pgDump(connectionString: string, file: string, what: string, signal?: AbortSignal): Promise<void> {
  return run('pg_dump', ['--format=custom', '--no-owner', `--file=${file}`], connectionString, what, signal);
}

/** Restores a custom-format dump into the database, replacing what it holds of the same objects. */
export function pgRestore(connectionString: string, file: string, what: string, signal?: AbortSignal): Promise<void> {
  return run('pg_restore', ['--clean', '--if-exists', '--no-owner', '--single-transaction', '--exit-on-error', file], connectionString, what, signal);
}
