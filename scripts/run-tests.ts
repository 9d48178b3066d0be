/**
 * The test launcher behind `npm test`: one embedded stack (Temporal dev server and
 * PostgreSQL, in a temporary folder, on free ports) for the whole suite, then
 * `node --test` over every test file, then the stack is stopped even when tests fail
 * or the run is interrupted, so no server outlives the run.
 *
 * Usage: npm test [-- test/config.test.ts ...]
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { writeTestConfig } from '../test/helpers/testConfig';
import { freeStablePort } from '../src/stack/ports';
import { loadConfig } from '../src/config/load';
import { stackDown, stackUp } from '../src/stack/stack';
import { createLogger } from '../src/logging';

const ROOT = path.resolve(import.meta.dirname, '..');

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return entry.name === 'helpers' || entry.name === 'fixtures' ? [] : testFiles(full);
      return entry.name.endsWith('.test.ts') ? [full] : [];
    })
    .sort();
}

export async function runTests(args: string[]): Promise<number> {
  const log = createLogger('tests');
  const files = args.length > 0 ? args.map((f) => path.resolve(f)) : testFiles(path.join(ROOT, 'test'));
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-test-'));
  // PostgreSQL runs as an unprivileged user when we are root: it must reach this folder.
  chmodSync(workDir, 0o755);
  // The master's API listens on a fixed port; a free one keeps the suite clear of a running demo.
  const masterPort = await freeStablePort();
  const configFile = writeTestConfig(workDir, (raw) => (raw.master.api.port = masterPort));
  const config = loadConfig(configFile);
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stackDown(config, log).catch((err) => log.error({ err }, 'could not stop the test stack')));
  let child: ReturnType<typeof execa> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    child?.kill(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    log.info({ workDir }, 'starting the test stack');
    await stackUp(config, log);
    child = execa(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', '--test-timeout=600000', ...files],
      {
        cwd: ROOT,
        env: { LESSONPLAN_TEST_CONFIG: configFile, LESSONPLAN_LOG_LEVEL: process.env.LESSONPLAN_LOG_LEVEL ?? 'warn' },
        stdio: 'inherit',
        reject: false,
      },
    );
    const result = await child;
    return result.exitCode ?? 1;
  } finally {
    await stop();
    // Keep the servers' logs of a run for a look afterwards; drop the rest.
    const artifacts = path.join(ROOT, 'test-artifacts', 'stack-logs');
    mkdirSync(artifacts, { recursive: true });
    for (const log of ['temporal/server.log', 'postgres/server.log']) {
      if (existsSync(path.join(workDir, log))) cpSync(path.join(workDir, log), path.join(artifacts, log.replace('/', '-')));
    }
    rmSync(workDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
