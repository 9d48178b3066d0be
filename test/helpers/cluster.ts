/**
 * A local cluster for one test file: the suite's Temporal and PostgreSQL, plus its own
 * satellites (real Apache instances) and HAProxy on free loopback ports, in a
 * temporary folder; stopped when the file is done.
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClusterConfig } from '../../src/config/schema';
import { clusterDown, clusterUp } from '../../src/cluster/localCluster';
import { freePort } from '../../src/stack/ports';
import { freshDatabase, onTeardown, testStack } from './stack';

export async function testCluster(
  name: string,
  options: { loadBalancer?: 'haproxy' | 'none' } = {},
): Promise<{ config: ClusterConfig; dir: string }> {
  const base = await testStack();
  const dir = mkdtempSync(path.join(os.tmpdir(), `lessonplan-${name}-`));
  chmodSync(dir, 0o755);
  const { spec } = await freshDatabase(base, name.replace(/-/g, '_'));
  const satellites = [];
  for (const s of base.satellites) {
    satellites.push({
      ...s,
      dataDir: path.join(dir, 'satellites', s.name),
      webServer: { ...s.webServer, port: await freePort(), examPort: await freePort() },
      url: '',
    });
  }
  for (const s of satellites) s.url = `http://127.0.0.1:${s.webServer.port}/`;
  const config: ClusterConfig = {
    ...base,
    operationalDatabase: spec,
    reference: { ...base.reference, name: `teacher-${name}`, lessonsDir: path.join(dir, 'reference/lessons') },
    satellites,
    loadBalancer:
      options.loadBalancer === 'none'
        ? { kind: 'none', healthCheckWait: 1_000 }
        : {
            kind: 'haproxy',
            frontendPort: await freePort(),
            runtimeApi: path.join(dir, 'haproxy/admin.sock'),
            backend: 'satellites',
            drainDeadline: 10_000,
            healthyDeadline: 30_000,
          },
  };
  onTeardown(() => clusterDown(config));
  await clusterUp(config);
  return { config, dir };
}
