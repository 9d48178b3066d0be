/**
 * The main job on the embedded defaults: bring the stack and the local cluster up
 * (Apache satellites behind HAProxy), run the cluster's workers, record the class list,
 * put sample subject matter in the inbox, and run prepareLesson (which holds the lesson
 * with holdLesson) while a bounded load asks HAProxy for pages. On a cluster that
 * serves nothing yet, a first lesson is prepared without load; the measured lesson
 * follows. Exits 0 only when the lesson was prepared, every satellite serves it, and
 * no request failed.
 */
import path from 'node:path';
import type { ClusterConfig } from '../config/schema';
import { openDatabase } from '../db/database';
import type { Logger } from '../logging';
import { startLoad, type LoadResult } from '../cluster/loadGenerator';
import { clusterUp } from '../cluster/localCluster';
import type { PreparationStatus } from '../shared/preparation';
import { describeCapacity } from '../shared/capacity';
import type { RolloutStatus } from '../shared/rollout';
import { databaseUrl } from '../stack/endpoints';
import { stackUp } from '../stack/stack';
import { allRoles } from '../workers/roles';
import { startWorkers } from '../workers/runWorkers';
import { connectClient, workflowUrl, type OperatorClient } from './client';
import { enrollClass } from './enroll';
import { startPrepareLesson } from './prepare';
import { formatBytes, printProgress } from './progress';
import { dropSampleBatch } from './sampleData';
import type { Example } from './examples';
import { percentile, runReplicationDemo, type ReplicationDemoResult } from './replicationDemo';

export interface MainJobResult {
  ok: boolean;
  temporalAddress: string;
  temporalUi?: string;
  enrolled: number;
  lessonId?: string;
  preparation: PreparationStatus;
  rollout?: RolloutStatus;
  load?: LoadResult;
  workflowUrl?: string;
  /** The master/slave part, when the config has a master and slaves. */
  replication?: ReplicationDemoResult;
  problems: string[];
}

type Io = { log: Logger; out: (line: string) => void };

/**
 * The cluster's own subjects (reference.subjects with commands) have their own pipeline:
 * the main job puts sample data in the inbox only for the built-in catalog, and new
 * subject matter where an example's check looks for it when running an example.
 */
export async function runMainJob(config: ClusterConfig, io: Io, example?: Example): Promise<MainJobResult> {
  io.out(`lessonplan: cluster ${config.cluster}${example ? ` (the ${example.name} example)` : ''}`);
  const own = config.reference.ownSubjects.length > 0;
  await stackUp(config, io.log);
  await clusterUp(config, io.log);
  const workers = await startWorkers(config, allRoles(config), io.log);
  const operator = await connectClient(config);
  let machines = 0;
  const ops = openDatabase(databaseUrl(config, config.operationalDatabase), { applicationName: 'lessonplan-main-job' });
  try {
    io.out(`Temporal UI: ${operator.endpoint.uiUrl ?? '(not embedded: see your Temporal server)'}`);
    const enrolled = await enrollClass(operator.client, config);
    machines = enrolled.result.enrolled.length + enrolled.result.updated.length + enrolled.result.unchanged.length;
    io.out(`class list recorded: ${machines} machines (${enrolled.result.enrolled.length} new, ${enrolled.result.retired.length} retired)`);

    const entry = config.loadBalancer.kind === 'haproxy' ? `http://127.0.0.1:${config.loadBalancer.frontendPort}` : undefined;
    if (entry) io.out(`users' entry (HAProxy): ${entry}/`);
    const servedBefore = entry ? await servedLesson(entry) : undefined;

    if (entry && !servedBefore) {
      // Nothing is served yet: the first lesson has no users to keep answering.
      if (!own) {
        const first = await dropSampleBatch(ops, config.reference.subjects);
        io.out(`the cluster serves no lesson yet: sample batch ${first.batch} (${first.items} items) goes into the inbox for a first lesson`);
      } else if (example) io.out(`the cluster serves no lesson yet: for a first lesson, ${example.addNewMatter(config.dataDir)}`);
      const firstRun = await prepare(operator, config, io);
      if (firstRun.preparation.phase !== 'done')
        return finish(firstRun.preparation, undefined, undefined, firstRun.url, [
          `the first lesson did not complete: ${firstRun.preparation.summary}`,
        ]);
    }

    if (!own) {
      const batch = await dropSampleBatch(ops, config.reference.subjects);
      io.out(`sample batch ${batch.batch}: ${batch.items} items in the inbox`);
    } else if (example) io.out(`new subject matter: ${example.addNewMatter(config.dataDir)}`);
    else io.out("the cluster's own check decides whether there is new subject matter");
    const oldLesson = entry ? await servedLesson(entry) : undefined;
    const load = entry
      ? startLoad({
          baseUrl: entry,
          paths: own
            ? (example?.loadPaths ?? ['/version', ...config.reference.ownSubjects.flatMap((s) => s.proofRead.queries)])
            : ['/version', '/', '/items/records/book-000001.json', '/version'],
          concurrency: 4,
          // About 200 requests a second: the workers of the whole cluster share this process.
          pauseMs: 20,
          maxRequests: 2_000_000,
          maxDurationMs: 30 * 60_000,
          // The version page tells old from new; other pages only have to answer.
          classify: (path, status, body) => (status !== 200 ? 'neither' : path !== '/version' ? 'either' : body === `${oldLesson}\n` ? 'old' : 'new'),
        })
      : undefined;
    if (load) io.out(`load: 4 clients, about 200 requests a second, asking ${entry}/ during the lesson (lesson served now: ${oldLesson ?? 'none'})`);
    // The load stops however the lesson ends, so a failure cannot leave it running.
    const measured = await prepare(operator, config, io).catch(async (err: unknown) => {
      await load?.stop();
      throw err;
    });
    const loadResult = await load?.stop();
    const replication = config.master && config.slaves.length > 0 ? await runReplicationDemo(config, operator, io.out) : undefined;
    return finish(measured.preparation, measured.rollout, loadResult, measured.url, [...(replication?.problems ?? [])], replication);
  } finally {
    await ops.close();
    await operator.close();
    workers.shutdown();
    await workers.done;
  }

  function finish(
    preparation: PreparationStatus,
    rollout: RolloutStatus | undefined,
    load: LoadResult | undefined,
    url: string | undefined,
    problems: string[],
    replication?: ReplicationDemoResult,
  ): MainJobResult {
    // A cluster of the user's own may have nothing new today: that is its check's answer, not a failure.
    const nothingNewIsFine = own && !example && preparation.phase === 'nothing-to-do';
    if (preparation.phase !== 'done' && !nothingNewIsFine) problems.push(`prepareLesson ended ${preparation.phase}: ${preparation.summary}`);
    if (rollout && rollout.phase !== 'done') problems.push(`holdLesson ended ${rollout.phase}`);
    const notServing = rollout?.groups.flatMap((g) => g.satellites).filter((s) => s.lessonServed !== preparation.lessonId) ?? [];
    if (notServing.length > 0) problems.push(`not serving lesson ${preparation.lessonId}: ${notServing.map((s) => s.name).join(', ')}`);
    if (load && load.failed > 0) problems.push(`${load.failed} requests failed during the lesson: ${load.failures.slice(0, 3).join('; ')}`);
    const configOption = example ? ` --config ${path.relative(process.cwd(), example.configFile)}` : '';
    summarize(io, preparation, rollout, load, url, problems, replication);
    io.out(`the stack keeps running; stop it with: npm run lessonplan --${configOption} dev down`);
    return {
      ok: problems.length === 0,
      temporalAddress: operator.endpoint.address,
      temporalUi: operator.endpoint.uiUrl,
      enrolled: machines,
      lessonId: preparation.lessonId,
      preparation,
      rollout,
      load,
      workflowUrl: url,
      replication,
      problems,
    };
  }
}

/** Runs one prepareLesson to its end, printing progress. */
async function prepare(
  operator: OperatorClient,
  config: ClusterConfig,
  io: Io,
): Promise<{ preparation: PreparationStatus; rollout?: RolloutStatus; url?: string }> {
  const handle = await startPrepareLesson(operator.client, config, 'main job');
  const url = workflowUrl(operator.endpoint, handle.workflowId, handle.firstExecutionRunId);
  io.out(`prepareLesson started: ${url ?? handle.workflowId}`);
  const progress = printProgress(operator.client, handle.workflowId, io.out);
  let preparation: PreparationStatus | undefined;
  try {
    preparation = await handle.result();
    const rollout = preparation.rollout
      ? ((await operator.client.workflow
          .getHandle(preparation.rollout.workflowId)
          .result()
          .catch(() => undefined)) as RolloutStatus | undefined)
      : undefined;
    return { preparation, rollout, url };
  } finally {
    await progress.stop(preparation);
  }
}

async function servedLesson(entry: string): Promise<string | undefined> {
  try {
    const response = await fetch(`${entry}/version`, { signal: AbortSignal.timeout(5_000) });
    return response.status === 200 ? (await response.text()).trim() : undefined;
  } catch {
    return undefined;
  }
}

function summarize(
  io: Io,
  preparation: PreparationStatus,
  rollout: RolloutStatus | undefined,
  load: LoadResult | undefined,
  url: string | undefined,
  problems: string[],
  replication?: ReplicationDemoResult,
) {
  const stats = preparation.stats;
  io.out('');
  io.out('summary');
  io.out(`  lesson:            ${preparation.lessonId ?? '(none)'} (${preparation.phase}): ${preparation.summary}`);
  if (stats) {
    if (stats.records + stats.documents > 0) io.out(`  changed:           ${stats.records} records, ${stats.documents} documents`);
    io.out(
      `  lesson files:      ${stats.files} (${formatBytes(stats.totalBytes)}); ${stats.filesAdded} added, ${stats.filesChanged} changed, ${stats.filesRemoved} removed (${formatBytes(stats.bytesChanged)})`,
    );
    if (stats.backupFile) io.out(`  backup:            ${stats.backupFile} (${formatBytes(stats.backupBytes)})`);
  }
  if (rollout) {
    const sats = rollout.groups.flatMap((g) => g.satellites);
    const copied = sats.reduce((n, s) => n + s.bytesCopied, 0);
    const sent = sats.reduce((n, s) => n + s.bytesSent, 0);
    const files = sats.reduce((n, s) => n + s.filesCopied, 0);
    io.out(`  copied:            ${files} files, ${formatBytes(copied)} changed, ${formatBytes(sent)} sent by rsync, to ${sats.length} satellites`);
    io.out(
      `  serving:           ${sats.filter((s) => s.lessonServed === preparation.lessonId).length} of ${sats.length} satellites serve the new lesson`,
    );
    if (rollout.capacity) io.out(`  capacity:          ${describeCapacity(rollout.capacity)}`);
  }
  if (load) {
    io.out(`  requests:          ${load.requests} through HAProxy, ${load.failed} failed (${load.old} old, ${load.new} new answers)`);
    io.out(`  mixed versions:    ${load.mixedWindowMs} ms (first new answer to last old answer)`);
  }
  if (url) io.out(`  Temporal UI:       ${url}`);
  if (replication) {
    const ms = (v: number) => `${v.toFixed(1)} ms`;
    const [first, ...others] = replication.slaves;
    io.out(
      `  master/slave:      ${replication.saves} saves through ${first?.slave}, answered once applied there: p50 ${ms(percentile(replication.saveMs, 50))}, p99 ${ms(percentile(replication.saveMs, 99))}`,
    );
    if (others.length > 0) {
      io.out(
        `  visible elsewhere: on ${others.map((s) => s.slave).join(', ')} after p50 ${ms(percentile(replication.visibleMs, 50))}, p99 ${ms(percentile(replication.visibleMs, 99))}`,
      );
    }
    io.out(`  slaves:            ${replication.slaves.map((s) => `${s.slave} at block ${s.highWaterMark} (${s.state})`).join(', ')}`);
  }
  for (const p of problems) io.out(`  PROBLEM: ${p}`);
  io.out(problems.length === 0 ? 'ok' : 'FAILED');
}
