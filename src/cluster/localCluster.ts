/**
 * The local cluster of the demo and the tests: every satellite of the config as a
 * real Apache instance on loopback (or its own services, once it has a lesson), with its own config, ports and data folder, and
 * one real HAProxy in front. Started and stopped by lessonplan itself.
 */
import { mkdirSync } from 'node:fs';
import type { ClusterConfig } from '../config/schema';
import type { Logger } from '../logging';
import { apacheOf, apachePid, portAnswers, startApache, stopApache } from '../activities/satellite/apache';
import { isOwnSatellite, servicesRunning, startServices, stopServices } from '../activities/satellite/ownServices';
import { linkedLesson } from '../activities/satellite/lessons';
import { stopReferenceServices } from '../activities/reference/ownSubjects';
import { haproxyPid, startHaproxy, stopHaproxy } from './haproxy';

/**
 * Starts every satellite's Apache and HAProxy that does not run yet. When one fails,
 * what this call started is stopped again, the failing one too (started, but its port
 * never answered): nothing half-started stays.
 */
export async function clusterUp(config: ClusterConfig, log?: Logger): Promise<void> {
  const startedHere: (() => Promise<unknown>)[] = [];
  try {
    for (const satellite of config.satellites) {
      try {
        mkdirSync(satellite.dataDir, { recursive: true });
      } catch (err) {
        throw new Error(`satellite ${satellite.name}: dataDir ${satellite.dataDir} cannot be created: ${(err as Error).message}`);
      }
      if (isOwnSatellite(satellite)) {
        // The satellite's own services serve a lesson: before the first rollout there is none to start them on.
        if (!linkedLesson(satellite)) continue;
        if ((await startServices(satellite)) === 'started') {
          startedHere.push(() => stopServices(satellite));
          log?.info({ satellite: satellite.name, port: satellite.webServer.port }, 'services started');
        }
        continue;
      }
      const apache = apacheOf(satellite);
      if (!apachePid(apache, 'serve')) {
        startedHere.push(() => {
          log?.info({ satellite: satellite.name }, 'stopping Apache again');
          return stopApache(apache, 'serve');
        });
      }
      if ((await startApache(apache, 'serve')) === 'started') log?.info({ satellite: satellite.name, port: apache.webServer.port }, 'Apache started');
    }
    if (config.loadBalancer.kind === 'haproxy') {
      if (!haproxyPid(config)) {
        startedHere.push(() => {
          log?.info('stopping HAProxy again');
          return stopHaproxy(config);
        });
      }
      if ((await startHaproxy(config)) === 'started') log?.info({ port: config.loadBalancer.frontendPort }, 'HAProxy started');
    }
  } catch (err) {
    for (const stop of startedHere.reverse()) await stop().catch((stopErr) => log?.warn({ err: stopErr }, 'could not stop a part started here'));
    throw err;
  }
}

export async function clusterDown(config: ClusterConfig, log?: Logger): Promise<void> {
  if (config.loadBalancer.kind === 'haproxy') await stopHaproxy(config);
  // A proof-read cut short (a worker stopped mid-step) leaves the reference's own web server running.
  await stopReferenceServices(config.reference).catch((err) => log?.warn({ err }, "could not stop the reference's own web server"));
  for (const satellite of config.satellites) {
    if (isOwnSatellite(satellite)) {
      for (const instance of ['serve', 'exam'] as const) {
        if (await servicesRunning(satellite, instance)) {
          await stopServices(satellite, undefined, instance).catch((err) =>
            log?.warn({ err, satellite: satellite.name, instance }, 'could not stop its services'),
          );
        }
      }
      continue;
    }
    const apache = apacheOf(satellite);
    for (const mode of ['serve', 'exam'] as const) {
      if (apachePid(apache, mode) || (await portAnswers(mode === 'serve' ? apache.webServer.port : apache.webServer.examPort))) {
        await stopApache(apache, mode).catch((err) => log?.warn({ err, satellite: satellite.name }, 'could not stop Apache'));
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
