/**
 * What each role's worker serves: its task queue, and its workflows or activities
 * built on real dependencies. One process may host several roles (the embedded
 * default), but each role only touches what belongs to its own host.
 */
import { fileURLToPath } from 'node:url';
import { Runtime, type WorkerOptions } from '@temporalio/worker';
import type { ClusterConfig } from '../config/schema';
import { openDatabase, type Database } from '../db/database';
import { migrateOperational, migrateReference } from '../db/migrate';
import { Client, Connection } from '@temporalio/client';
import { createDescribeHostActivity } from '../activities/common/describeHost';
import { createAlertActivities } from '../activities/common/alerts';
import { createNotifier } from '../alerts/notifier';
import { createReferenceActivities } from '../activities/reference';
import { createLoadBalancerActivities } from '../activities/loadBalancer';
import { createSatelliteActivities } from '../activities/satellite';
import { createSlaveActivities } from '../activities/slave';
import { AppliedMark } from '../activities/slave/appliedMark';
import { createMasterClient } from '../activities/slave/masterClient';
import { STOP_SIGNALS } from './runtime';
import { startSaveEndpoint } from '../slave/saveEndpoint';
import { slaveCredential } from '../master/credentials';
import { startMasterService } from '../master/service';
import { readMasterCa } from '../master/tls';
import { examinationCommands } from '../config/commands';
import { fieldPath } from '../config/messages';
import { migrateReplica } from '../model/deploy';
import type { Logger } from '../logging';
import { MASTER_TASK_QUEUE, ORCHESTRATION_TASK_QUEUE, REFERENCE_TASK_QUEUE, satelliteTaskQueue, slaveTaskQueue } from '../shared/names';
import { databaseUrl, masterApiUrl, temporalEndpoint } from '../stack/endpoints';

export const ROLES = ['orchestration', 'reference', 'satellite', 'master', 'slave'] as const;
export type Role = (typeof ROLES)[number];

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** One role's worker, ready to create: options plus what to close after it stopped. */
export interface RoleWorker {
  role: Role;
  name: string;
  options: Pick<WorkerOptions, 'taskQueue' | 'workflowsPath' | 'workflowBundle' | 'activities' | 'maxHeartbeatThrottleInterval'>;
  close(): Promise<void>;
}

export class RoleError extends Error {
  override readonly name = 'RoleError';
}

export async function buildRoleWorker(config: ClusterConfig, role: Role, name: string | undefined, log: Logger): Promise<RoleWorker> {
  /** What the worker holds open, closed after it stopped: database pools, the Temporal client. */
  const open: { close(): Promise<void> }[] = [];
  const connect = (db: ClusterConfig['operationalDatabase'], app: string) => {
    const handle = openDatabase(databaseUrl(config, db), { applicationName: `lessonplan-${app}` });
    open.push(handle);
    return handle;
  };
  const close = async () => {
    await Promise.all(open.map((db) => db.close()));
  };
  const notifier = config.alerts ? createNotifier(config.alerts) : undefined;
  switch (role) {
    case 'orchestration':
      return { role, name: 'orchestration', options: { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowsPath: WORKFLOWS_PATH }, close };
    case 'reference': {
      const operational = connect(config.operationalDatabase, 'reference');
      await migrateOperational(operational);
      const referenceUrl = databaseUrl(config, config.reference.database);
      const reference = connect(config.reference.database, 'reference-db');
      await migrateReference(reference);
      // Asking Temporal which rollouts run (check if still holding a lesson) needs a client; made on first use.
      let temporal: Promise<{ client: Client; connection: Connection }> | undefined;
      const temporalClient = async () => {
        temporal ??= (async () => {
          const endpoint = temporalEndpoint(config);
          const connection = await Connection.connect({ address: endpoint.address });
          return { connection, client: new Client({ connection, namespace: endpoint.namespace }) };
        })();
        return (await temporal).client;
      };
      open.push({
        close: async () => {
          if (temporal) await (await temporal).connection.close();
        },
      });
      return {
        role,
        name: config.reference.name,
        options: {
          taskQueue: REFERENCE_TASK_QUEUE,
          // Heartbeats carry what a command of the cluster's own prints: sent within 2 s, not the SDK's 80% of the heartbeat timeout.
          maxHeartbeatThrottleInterval: '2s',
          activities: {
            ...createReferenceActivities({
              operational,
              preparation: { config, reference, referenceUrl, temporal: temporalClient },
              ...(notifier ? { alerting: { cluster: config.cluster, notifier } } : {}),
            }),
            ...(config.loadBalancer.kind === 'haproxy'
              ? createLoadBalancerActivities({ runtimeApi: config.loadBalancer.runtimeApi, backend: config.loadBalancer.backend })
              : {}),
            ...createDescribeHostActivity(role, config.reference.name, operational),
          },
        },
        close,
      };
    }
    case 'satellite': {
      const satellite = config.satellites.find((s) => s.name === name);
      if (!satellite)
        throw new RoleError(
          unknownName(
            'satellite',
            name,
            config.satellites.map((s) => s.name),
          ),
        );
      return {
        role,
        name: satellite.name,
        options: {
          taskQueue: satelliteTaskQueue(satellite.name),
          activities: {
            ...createSatelliteActivities({
              satellite,
              testCommand: config.reference.testCommand,
              chromium: config.reference.chromium,
              ownTestCommands: examinationCommands(config).map(({ path, command }) => ({ field: fieldPath(path), command })),
            }),
            ...createDescribeHostActivity(role, satellite.name),
          },
        },
        close,
      };
    }
    case 'master': {
      if (!config.master) throw new RoleError('the config has no master');
      // The master serves its HTTP API (what slaves talk to) in this process.
      // Counted on this process's runtime (installed by startWorkers before the roles are built).
      const service = await startMasterService(config, log, Runtime.instance().metricMeter);
      open.push(service);
      return {
        role,
        name: config.master.name,
        options: { taskQueue: MASTER_TASK_QUEUE, activities: createDescribeHostActivity(role, config.master.name, service.db) },
        close,
      };
    }
    case 'slave': {
      const slave = config.slaves.find((s) => s.name === name);
      if (!slave)
        throw new RoleError(
          unknownName(
            'slave',
            name,
            config.slaves.map((s) => s.name),
          ),
        );
      if (!config.master) throw new RoleError('slaves are configured without a master');
      const db = connect(slave.database, `slave-${slave.name}`);
      await migrateReplica(db);
      const master = createMasterClient({
        url: masterApiUrl(config, slave),
        ...(slave.masterAddress ? { certifiedAs: config.master.api.host } : {}),
        slave: slave.name,
        credential: slaveCredential(config, slave),
        ca: readMasterCa(config),
      });
      // The follow of the master and the save endpoint share what is applied here.
      const mark = new AppliedMark();
      // The SDK's runtime stops the workers on these signals; the running follow hears of it too, and reports.
      const stopping = new AbortController();
      const stop = () => stopping.abort();
      for (const signal of STOP_SIGNALS) process.once(signal, stop);
      const endpoint = slave.saveEndpoint ? await startSaveEndpoint(config, slave, { db, master, mark, log }) : undefined;
      const reachable = temporalProbe(config);
      open.push(reachable);
      return {
        role,
        name: slave.name,
        options: {
          taskQueue: slaveTaskQueue(slave.name),
          activities: {
            ...createSlaveActivities({
              slave: slave.name,
              db,
              master,
              batchSize: slave.batchSize,
              mark,
              stopping: stopping.signal,
              temporalReachable: reachable.answers,
            }),
            ...createAlertActivities(notifier),
            ...createDescribeHostActivity(role, slave.name, db),
          },
        },
        // Saves in flight end before the database they wait on closes.
        close: async () => {
          for (const signal of STOP_SIGNALS) process.off(signal, stop);
          await endpoint?.close();
          await close();
        },
      };
    }
  }
}

/** Asks the Temporal server for its system info (1 s at most): does it answer now. One connection, made again after a failure. */
function temporalProbe(config: ClusterConfig): { answers(): Promise<boolean>; close(): Promise<void> } {
  let connection: Promise<Connection> | undefined;
  return {
    async answers() {
      try {
        connection ??= Connection.connect({ address: temporalEndpoint(config).address, connectTimeout: 1_000 });
        const open = await connection;
        await open.withDeadline(Date.now() + 1_000, () => open.workflowService.getSystemInfo({}));
        return true;
      } catch {
        const failed = connection;
        connection = undefined;
        await failed?.then((c) => c.close()).catch(() => undefined);
        return false;
      }
    },
    async close() {
      await connection?.then((c) => c.close()).catch(() => undefined);
    },
  };
}

function unknownName(role: string, name: string | undefined, known: string[]): string {
  if (!name) return `the ${role} worker needs the name of its ${role}; configured: ${known.join(', ') || '(none)'}`;
  return `no ${role} named "${name}" in the config; configured: ${known.join(', ') || '(none)'}`;
}

/** Every role of the config, for the all-in-one worker of the embedded default. */
export function allRoles(config: ClusterConfig): { role: Role; name?: string }[] {
  return [
    { role: 'orchestration' },
    { role: 'reference' },
    ...config.satellites.map((s) => ({ role: 'satellite' as const, name: s.name })),
    ...(config.master ? [{ role: 'master' as const }] : []),
    ...config.slaves.map((s) => ({ role: 'slave' as const, name: s.name })),
  ];
}
