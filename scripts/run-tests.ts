/**
 * The test launcher behind `npm test`: one embedded stack (Temporal dev server and
 * PostgreSQL, in a temporary folder, on free ports) for the whole suite, then
 * `node --test` over every test file, then the stack is stopped even when tests fail
 * or the run is interrupted, so no server outlives the run.
 *
 * Then the production profile: the integration tests that matter most run again on a
 * second stack whose Temporal server is the one built from go.temporal.io/server, on
 * PostgreSQL (`temporal.embedded.server: postgres`), as production runs it.
 *
 * Usage: npm test [-- test/config.test.ts ...] (files given: those alone, on the stack
 * LESSONPLAN_TEST_TEMPORAL names, dev by default)
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

/** The production profile's files: a rollout with a halt and resume, prepareLesson, schedules, slaveSync with a model change. */
const ON_TEMPORAL_SERVER_ON_POSTGRES = [
  'holdLesson.integration.test.ts',
  'prepareLesson.integration.test.ts',
  'schedule.integration.test.ts',
  'slaveSync.integration.test.ts',
  'temporalUi.integration.test.ts',
];

export async function runTests(args: string[]): Promise<number> {
  if (args.length > 0) return runSuite(args.map((f) => path.resolve(f)));
  const suite = await runSuite(testFiles(path.join(ROOT, 'test')));
  createLogger('tests').info('the production profile: again on the Temporal server on PostgreSQL');
  const profile = await runSuite(
    ON_TEMPORAL_SERVER_ON_POSTGRES.map((f) => path.join(ROOT, 'test', f)),
    'postgres',
  );
  return suite !== 0 ? suite : profile;
}

async function runSuite(files: string[], temporalServer = process.env.LESSONPLAN_TEST_TEMPORAL ?? 'dev'): Promise<number> {
  const log = createLogger('tests');
  process.env.LESSONPLAN_TEST_TEMPORAL = temporalServer;
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
        env: {
          LESSONPLAN_TEST_CONFIG: configFile,
          LESSONPLAN_TEST_TEMPORAL: temporalServer,
          LESSONPLAN_LOG_LEVEL: process.env.LESSONPLAN_LOG_LEVEL ?? 'warn',
        },
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
    for (const log of ['temporal/server.log', 'temporal-server/server.log', 'postgres/server.log']) {
      const name = `${temporalServer === 'dev' ? '' : `${temporalServer}-`}${log.replace('/', '-')}`;
      if (existsSync(path.join(workDir, log))) cpSync(path.join(workDir, log), path.join(artifacts, name));
    }
    rmSync(workDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
