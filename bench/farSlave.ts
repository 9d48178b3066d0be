/**
 * A part of `npm run bench` (runnable alone: `node --import tsx bench/farSlave.ts`): a
 * slave 20 ms (round trip) from its master, through a real latency proxy (Toxiproxy,
 * 10 ms each way) that the slave reaches the master by (`slaves[].masterAddress`). In
 * one run, sequentially, each p50 / p99:
 *
 * - the round trip itself: GET /v1/health of the master through the proxy (the reference);
 * - a save sent to the master through the proxy (MasterClient.save, the slave's credential);
 * - a save through the slave's save endpoint, answered once applied on the slave;
 * - a read of one row of the slave's own database, with nothing else running, and again
 *   while a client saves through the endpoint in a loop.
 *
 * Target (issue 17): the endpoint's save within one round trip + 10 ms at p50, and reads
 * on the slave unaffected. Appends one row to BENCHMARKS.md.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createMasterClient } from '../src/activities/slave/masterClient';
import { loadConfig } from '../src/config/load';
import { openDatabase } from '../src/db/database';
import { createLogger } from '../src/logging';
import { saveEndpointToken, slaveCredential } from '../src/master/credentials';
import { deployModel } from '../src/model/deploy';
import { connectClient } from '../src/operator/client';
import { percentile } from '../src/operator/replicationDemo';
import { startSlaveSync } from '../src/operator/slaveSync';
import { databaseUrl } from '../src/stack/endpoints';
import { freeStablePort } from '../src/stack/ports';
import { stackDown, stackUp } from '../src/stack/stack';
import { startWorkers } from '../src/workers/runWorkers';
import { startLatencyProxy } from '../test/helpers/latencyProxy';
import { LIBRARY_V1, postSave } from '../test/helpers/replication';
import { writeTestConfig } from '../test/helpers/testConfig';
import { appendBenchmarkRow } from './rollout';

const ONE_WAY_MS = 10;
const SAMPLES = 200;
const WARMUP = 20;

const log = createLogger('bench', { level: 'warn' });
const now = () => performance.now();
const fmt = (ms: number) => (ms < 10 ? ms.toFixed(1) : ms.toFixed(0));
const p50p99 = (values: number[]) => `${fmt(percentile(values, 50))} / ${fmt(percentile(values, 99))} ms`;

/** Times `op(i)` WARMUP + SAMPLES times, one after another; keeps the last SAMPLES. */
async function timed(op: (i: number) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    const start = now();
    await op(i);
    if (i >= WARMUP) times.push(now() - start);
  }
  return times;
}

interface FarFigures {
  roundTrip: number[];
  masterSave: number[];
  endpointSave: number[];
  readIdle: number[];
  readWhileSaving: number[];
}

async function benchFarSlave(dir: string): Promise<FarFigures> {
  const endpointPort = await freeStablePort();
  const proxyPort = await freeStablePort(new Set([endpointPort]));
  const apiPort = await freeStablePort(new Set([endpointPort, proxyPort]));
  const config = loadConfig(
    writeTestConfig(dir, (raw) => {
      raw.master.api.port = apiPort;
      raw.slaves = [{ ...raw.slaves[0], masterAddress: `127.0.0.1:${proxyPort}`, saveEndpoint: { port: endpointPort } }];
      raw.timings = { ...raw.timings, slavePollInterval: '1s', saveTimeout: '10s' };
    }),
  );
  const slave = config.slaves[0]!;
  await stackUp(config, log);
  const proxy = await startLatencyProxy(`127.0.0.1:${apiPort}`, proxyPort);
  try {
    await proxy.delay(ONE_WAY_MS);
    const workers = await startWorkers(config, [{ role: 'orchestration' }, { role: 'master' }, { role: 'slave', name: slave.name }], log);
    const operator = await connectClient(config);
    const master = openDatabase(databaseUrl(config, config.master!.database), { applicationName: 'lessonplan-bench' });
    const reader = new pg.Client({ connectionString: databaseUrl(config, slave.database), application_name: 'lessonplan-bench' });
    let handle: Awaited<ReturnType<typeof startSlaveSync>> | undefined;
    try {
      await reader.connect();
      const { checksum } = await deployModel(master, LIBRARY_V1);
      handle = await startSlaveSync(operator.client, config, slave.name);
      const token = `Bearer ${saveEndpointToken(config, slave)}`;
      const save = async (key: string, id: number) => {
        const answer = await postSave(
          endpointPort,
          { idempotencyKey: key, modelChecksum: checksum, changes: [{ class: 'book', op: 'upsert', values: { id, title: key } }] },
          token,
        );
        if (answer.status !== 200) throw new Error(`the save endpoint answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      };
      // The first save waits until the slave follows (its endpoint refuses saves before).
      for (let tries = 0; ; tries++) {
        try {
          await save('first', 1);
          break;
        } catch (err) {
          if (tries > 100) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      const proxied = `http://${proxy.listen}`;
      console.log(`far slave: ${WARMUP} + ${SAMPLES} round trips, master saves, endpoint saves and reads, ${ONE_WAY_MS} ms each way`);
      const roundTrip = await timed(async () => (await fetch(`${proxied}/v1/health`)).text());
      const direct = createMasterClient({ url: proxied, slave: slave.name, credential: slaveCredential(config, slave) });
      const masterSave = await timed((i) =>
        direct.save(
          {
            modelChecksum: checksum,
            idempotencyKey: `direct-${i}`,
            changes: [{ class: 'book', op: 'upsert', values: { id: 10_000 + i, title: 'direct' } }],
          },
          { timeoutMs: 10_000 },
        ),
      );
      const endpointSave = await timed((i) => save(`endpoint-${i}`, 20_000 + i));
      const read = () => reader.query('SELECT title FROM book WHERE id = $1', [1]);
      const readIdle = await timed(read);
      let saving = true;
      const background = (async () => {
        for (let i = 0; saving; i++) await save(`background-${i}`, 30_000 + i);
      })();
      const readWhileSaving = await timed(read);
      saving = false;
      await background;
      return { roundTrip, masterSave, endpointSave, readIdle, readWhileSaving };
    } finally {
      await handle?.terminate('the bench is done').catch(() => undefined);
      await reader.end().catch(() => undefined);
      await master.close();
      await operator.close();
      workers.shutdown();
      await workers.done;
    }
  } finally {
    await proxy.stop();
    await stackDown(config, log);
  }
}

const FAR_TABLE = {
  intro: [
    '## A slave 20 ms from its master',
    '',
    'Made by `npm run bench` (`bench/farSlave.ts`, also runnable alone): one slave that reaches its',
    `master through a real latency proxy (Toxiproxy, ${ONE_WAY_MS} ms added each way, so a round trip of`,
    `${2 * ONE_WAY_MS} ms plus loopback), the Temporal dev server, the embedded PostgreSQL, the master API and`,
    `the workers in the bench process. ${SAMPLES} sequential samples after ${WARMUP} warm-up ones, p50 / p99:`,
    'the round trip itself (GET /v1/health of the master through the proxy), a save sent to the master',
    "through the proxy, a save through the slave's save endpoint (answered once applied on the slave),",
    "and a read of one row of the slave's database, idle and while a client saves through the endpoint",
    'in a loop. Target: the endpoint save within one round trip + 10 ms at p50; reads unaffected.',
  ],
  header:
    '| date | round trip | save on the master through the proxy | save through the slave (applied there) | read on the slave, idle | read on the slave, while saving | made by |',
};

const madeBy = process.env.npm_lifecycle_event === 'bench' ? '`npm run bench`' : '`node --import tsx bench/farSlave.ts`';
const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-bench-far-'));
chmodSync(dir, 0o755);
try {
  const f = await benchFarSlave(dir);
  const date = new Date().toISOString().slice(0, 10);
  const row = `| ${date} | ${p50p99(f.roundTrip)} | ${p50p99(f.masterSave)} | ${p50p99(f.endpointSave)} | ${p50p99(f.readIdle)} | ${p50p99(f.readWhileSaving)} | ${madeBy} |`;
  console.log(row);
  appendBenchmarkRow(FAR_TABLE, row);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
