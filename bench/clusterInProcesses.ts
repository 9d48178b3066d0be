/**
 * A master/slave cluster laid out as in production, for the benches that must not share
 * one event loop between the load and what it loads: the Temporal dev server and the
 * embedded PostgreSQL (the master's and two slaves' databases), then the master worker
 * (with its API), one worker per slave (with its save endpoint) and the orchestration
 * worker, each a process of its own (`src/workers/<role>.ts`), and both slaveSyncs
 * started and following. Each worker logs its warnings to <dir>/<role>.log.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { Client } from '@temporalio/client';
import { request } from 'undici';
import { loadConfig } from '../src/config/load';
import type { ClusterConfig, SlaveConfig } from '../src/config/schema';
import { openDatabase, type Database } from '../src/db/database';
import { createLogger } from '../src/logging';
import { saveEndpointToken } from '../src/master/credentials';
import { deployModel, migrateReplica } from '../src/model/deploy';
import { connectClient } from '../src/operator/client';
import { startSlaveSync } from '../src/operator/slaveSync';
import { workflowIds } from '../src/shared/names';
import { databaseUrl } from '../src/stack/endpoints';
import { freeStablePort } from '../src/stack/ports';
import { stackDown, stackUp } from '../src/stack/stack';
import { LIBRARY_V1 } from '../test/helpers/replication';
import { writeTestConfig } from '../test/helpers/testConfig';

const ROOT = path.resolve(import.meta.dirname, '..');
const log = createLogger('bench', { level: 'warn' });

export interface SaveEndpoint {
  slave: string;
  url: string;
  token: string;
}

export interface ClusterInProcesses {
  config: ClusterConfig;
  slaves: SlaveConfig[];
  master: Database;
  slaveDbs: Database[];
  /** The model deployed on the master (LIBRARY_V1). */
  checksum: string;
  endpoints: SaveEndpoint[];
  temporal: Client;
  /** Each worker process's RSS now, in MiB, by role (the slaves by name). */
  rss(): Record<string, number>;
  /** CPU time so far, in ms, of each worker (by role), of this process ("load"), of PostgreSQL and of Temporal. */
  cpuMs(): Record<string, number>;
  close(): Promise<void>;
}

const rssMiB = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024);
};

/** utime + stime of a process, in ms (the kernel counts in ticks of 10 ms on this machine kind). */
function cpuOf(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined; // gone since the listing
  }
}

export async function startClusterInProcesses(name: string): Promise<ClusterInProcesses> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `lessonplan-bench-${name}-`));
  chmodSync(dir, 0o755);
  const apiPort = await freeStablePort();
  const endpointPorts = [await freeStablePort(), await freeStablePort()];
  const configFile = writeTestConfig(dir, (raw) => {
    raw.master.api.port = apiPort;
    raw.slaves.forEach((s: Record<string, unknown>, i: number) => (s.saveEndpoint = { port: endpointPorts[i] }));
    raw.timings = { ...raw.timings, slavePollInterval: '1s', saveTimeout: '10s' };
  });
  const config = loadConfig(configFile);
  const slaves = config.slaves.slice(0, 2);
  if (slaves.length < 2) throw new Error('the bench needs two slaves in config/local-demo.yaml');

  const processes: { role: string; child: ResultPromise }[] = [];
  const opened: { close(): Promise<void> }[] = [];
  let connected: Awaited<ReturnType<typeof connectClient>> | undefined;
  const close = async () => {
    for (const s of slaves) {
      await connected?.client.workflow
        .getHandle(workflowIds.slaveSync(s.name))
        .terminate('the bench is done')
        .catch(() => undefined);
    }
    for (const p of processes) p.child.kill('SIGTERM');
    await Promise.all(processes.map((p) => p.child));
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    await stackDown(config, log);
    rmSync(dir, { recursive: true, force: true });
  };

  await stackUp(config, log);
  try {
    const worker = (role: string, file: string, ...args: string[]) => {
      const child = execa('node', ['--import', 'tsx', file, '--config', configFile, ...args], {
        cwd: ROOT,
        reject: false,
        env: { LESSONPLAN_LOG_FORMAT: 'json', LESSONPLAN_LOG_LEVEL: 'warn' },
        // To files, not buffered here: a long run's warnings would count in this process's memory.
        stdout: { file: path.join(dir, `${role}.log`) },
        stderr: { file: path.join(dir, `${role}.log`) },
      });
      processes.push({ role, child });
    };
    const master = openDatabase(databaseUrl(config, config.master!.database), { max: 2, applicationName: 'lessonplan-bench' });
    opened.push(master);
    const slaveDbs = slaves.map((s) => openDatabase(databaseUrl(config, s.database), { max: 2, applicationName: 'lessonplan-bench' }));
    opened.push(...slaveDbs);
    for (const db of [master, ...slaveDbs]) await migrateReplica(db);
    const { checksum } = await deployModel(master, LIBRARY_V1);

    worker('master', 'src/workers/master.ts');
    worker('orchestration', 'src/workers/orchestration.ts');
    for (const s of slaves) worker(s.name, 'src/workers/slave.ts', '--name', s.name);
    connected = await connectClient(config);
    opened.push(connected);
    for (const s of slaves) await startSlaveSync(connected.client, config, s.name);
    const endpoints = slaves.map((s, i) => ({
      slave: s.name,
      url: `http://127.0.0.1:${endpointPorts[i]}/v1/saves`,
      token: saveEndpointToken(config, s),
    }));
    // The endpoints take saves once the workers are up and following.
    for (const e of endpoints) {
      for (let tries = 0; ; tries++) {
        const health = await request(e.url.replace('/v1/saves', '/v1/health'))
          .then(async (r) => (r.statusCode === 200 ? ((await r.body.json()) as { following?: boolean }) : (await r.body.dump(), undefined)))
          .catch(() => undefined);
        if (health?.following) break;
        if (tries > 600) throw new Error(`the save endpoint ${e.url} never answered as following (worker logs in ${dir})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    const workerPids = () => processes.map((p) => ({ role: p.role, pid: p.child.pid! }));
    return {
      config,
      slaves,
      master,
      slaveDbs,
      checksum,
      endpoints,
      temporal: connected.client,
      rss: () => Object.fromEntries(workerPids().map((p) => [p.role, rssMiB(p.pid)])),
      cpuMs: () => {
        const roleOf = new Map(workerPids().map((p) => [String(p.pid), p.role]));
        const out: Record<string, number> = {};
        for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
          let who = roleOf.get(pid) ?? (Number(pid) === process.pid ? 'load' : undefined);
          if (!who) {
            const cmd = (() => {
              try {
                return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
              } catch {
                return '';
              }
            })();
            who = /postgres/.test(cmd) ? 'PostgreSQL' : /temporal/.test(cmd) ? 'Temporal' : undefined;
          }
          const ms = who ? cpuOf(pid) : undefined;
          if (who && ms !== undefined) out[who] = (out[who] ?? 0) + ms;
        }
        return out;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A save of one book through a slave's save endpoint, answered once applied there. undici's
 * `request` rather than fetch: the load's own CPU shares the machine with what it measures,
 * and fetch costs about a millisecond more per call.
 */
export async function saveBook(endpoint: SaveEndpoint, checksum: string, id: number, idempotencyKey: string): Promise<void> {
  const response = await request(endpoint.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${endpoint.token}` },
    body: JSON.stringify({
      modelChecksum: checksum,
      idempotencyKey,
      changes: [{ class: 'book', op: 'upsert', values: { id, title: `book ${id}`, copies: id % 7 } }],
    }),
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
}
