/**
 * Test clusters: the local demo's shape, with every path in a temporary folder and
 * every embedded port picked free, so a test run never touches the developer's stack.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';

const DEMO = path.resolve(import.meta.dirname, '../../config/local-demo.yaml');

/** Writes <dir>/cluster.yaml and returns its path; `edit` may change the parsed config first. */
export function writeTestConfig(dir: string, edit: (config: Record<string, any>) => void = () => undefined): string {
  const config = parse(readFileSync(DEMO, 'utf8'));
  config.cluster = 'test';
  config.dataDir = '.';
  config.temporal.embedded = { port: 0, uiPort: 0 };
  config.postgres.embedded = { port: 0 };
  config.reference.lessonsDir = './reference/lessons';
  config.loadBalancer.runtimeApi = './haproxy/admin.sock';
  for (const s of config.satellites) s.dataDir = `./satellites/${s.name}`;
  config.timings = { lastCigarette: '0s', coffee: '0s', slavePollInterval: '200ms', saveTimeout: '5s' };
  config.workers = { shutdownGraceTime: '5s' };
  // The demo's fixed metrics port could be taken by the developer's own stack; tests that scrape pick a free one.
  delete config.metrics;
  // The production profile: LESSONPLAN_TEST_TEMPORAL=postgres runs the tests on the Temporal server on PostgreSQL.
  const temporalServer = process.env.LESSONPLAN_TEST_TEMPORAL ?? 'dev';
  if (temporalServer !== 'dev' && temporalServer !== 'postgres') {
    throw new Error(`LESSONPLAN_TEST_TEMPORAL is "${temporalServer}": expected dev (the default) or postgres`);
  }
  config.temporal.embedded.server = temporalServer;
  edit(config);
  const file = path.join(dir, 'cluster.yaml');
  writeFileSync(file, stringify(config));
  return file;
}
