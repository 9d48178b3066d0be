/**
 * The local cluster of the demo and the tests: every satellite of the config as a
 * real Apache instance on loopback, with its own config, ports and data folder, and
 * one real HAProxy in front. Started and stopped by lessonplan itself.
 */
import { mkdirSync } from 'node:fs';
import type { ClusterConfig } from '../config/schema';
import type { Logger } from '../logging';
import { apachePid, portAnswers, startApache, stopApache } from '../activities/satellite/apache';
import { linkedLesson } from '../activities/satellite/lessons';
import { haproxyPid, startHaproxy, stopHaproxy } from './haproxy';

export async function clusterUp(config: ClusterConfig, log?: Logger): Promise<void> {
  for (const satellite of config.satellites) {
    mkdirSync(satellite.dataDir, { recursive: true });
    if ((await startApache(satellite, 'serve')) === 'started')
      log?.info({ satellite: satellite.name, port: satellite.webServer.port }, 'Apache started');
  }
  if (config.loadBalancer.kind === 'haproxy' && (await startHaproxy(config)) === 'started') {
    log?.info({ port: config.loadBalancer.frontendPort }, 'HAProxy started');
  }
}

export async function clusterDown(config: ClusterConfig, log?: Logger): Promise<void> {
  if (config.loadBalancer.kind === 'haproxy') await stopHaproxy(config);
  for (const satellite of config.satellites) {
    for (const mode of ['serve', 'exam'] as const) {
      if (apachePid(satellite, mode) || (await portAnswers(mode === 'serve' ? satellite.webServer.port : satellite.webServer.examPort))) {
        await stopApache(satellite, mode).catch((err) => log?.warn({ err, satellite: satellite.name }, 'could not stop Apache'));
      }
    }
  }
}

export interface ClusterMemberStatus {
  name: string;
  group: string;
  webServer: 'running' | 'stopped';
  lesson: string | null;
}

export async function clusterStatus(
  config: ClusterConfig,
): Promise<{ loadBalancer: 'running' | 'stopped' | 'not controlled'; satellites: ClusterMemberStatus[] }> {
  return {
    loadBalancer: config.loadBalancer.kind === 'haproxy' ? (haproxyPid(config) ? 'running' : 'stopped') : 'not controlled',
    satellites: await Promise.all(
      config.satellites.map(async (s) => ({
        name: s.name,
        group: s.group,
        webServer: (await portAnswers(s.webServer.port)) ? ('running' as const) : ('stopped' as const),
        lesson: linkedLesson(s) ?? null,
      })),
    ),
  };
}
