/**
 * A local cluster for one test file: the suite's Temporal and PostgreSQL, plus its own
 * satellites (real Apache instances) and HAProxy on free loopback ports, in a
 * temporary folder; stopped when the file is done. The config is written to a file too,
 * so that a test can start worker processes on it.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../src/config/load';
import type { ClusterConfig } from '../../src/config/schema';
import { clusterDown, clusterUp } from '../../src/cluster/localCluster';
import { freeStablePort } from '../../src/stack/ports';
import { freshDatabase, onTeardown, testConfigFile, testStack } from './stack';

/** Satellites per group, in rollout order: `{ a: 2, b: 2 }` makes a-1, a-2, b-1, b-2 (default: the demo's four). */
export type ClusterShape = Record<string, number>;

export async function testCluster(
  name: string,
  edit: (raw: Record<string, any>) => void = () => undefined,
  shape?: ClusterShape,
): Promise<{ config: ClusterConfig; dir: string; configFile: string }> {
  const base = await testStack();
  const dir = mkdtempSync(path.join(os.tmpdir(), `lessonplan-${name}-`));
  chmodSync(dir, 0o755);
  const { spec } = await freshDatabase(base, name.replace(/-/g, '_'));
  const raw = parse(readFileSync(testConfigFile(), 'utf8'));
  raw.dataDir = base.dataDir; // the suite's stack
  raw.operationalDatabase = spec;
  raw.reference.name = `teacher-${name}`;
  raw.reference.lessonsDir = path.join(dir, 'reference/lessons');
  raw.reference.database = (await freshDatabase(base, `${name.replace(/-/g, '_')}_ref`)).spec;
  // Ports bound later, by Apache and HAProxy: distinct, and out of the kernel's ephemeral range.
  const taken = new Set<number>();
  const distinctPort = () => freeStablePort(taken);
  if (shape) {
    const template = raw.satellites[0];
    raw.satellites = Object.entries(shape).flatMap(([group, count]) =>
      Array.from({ length: count }, (_, i) => ({ ...template, name: `${group}-${i + 1}`, group })),
    );
    raw.groups = { ...raw.groups, order: Object.keys(shape) };
  }
  for (const s of raw.satellites) {
    s.dataDir = path.join(dir, 'satellites', s.name);
    s.webServer = { ...s.webServer, port: await distinctPort(), examPort: await distinctPort() };
    s.url = `http://127.0.0.1:${s.webServer.port}/`;
  }
  raw.loadBalancer = {
    kind: 'haproxy',
    frontendPort: await distinctPort(),
    runtimeApi: path.join(dir, 'haproxy/admin.sock'),
    backend: 'satellites',
    drainDeadline: '10s',
    healthyDeadline: '30s',
  };
  edit(raw);
  const configFile = path.join(dir, 'cluster.yaml');
  writeFileSync(configFile, stringify(raw));
  const config = loadConfig(configFile);
  onTeardown(async () => {
    await clusterDown(config);
    rmSync(dir, { recursive: true, force: true });
  });
  await clusterUp(config);
  return { config, dir, configFile };
}
