/** Helpers for prepareLesson tests: subject matter in the inbox, and waiting on a run's status. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { ClusterConfig } from '../../src/config/schema';
import { openDatabase, type Database } from '../../src/db/database';
import { migrateOperational } from '../../src/db/migrate';
import { dropIntoInbox } from '../../src/activities/reference/inbox';
import { sampleBatch, sampleSubjects } from '../../src/operator/sampleData';
import type { PreparationStatus } from '../../src/shared/preparation';
import type { InboxItem } from '../../src/shared/subjectMatter';
import { databaseUrl } from '../../src/stack/endpoints';
import { enrollClass } from '../../src/operator/enroll';
import { testCluster } from './cluster';
import { onTeardown } from './stack';
import { clientForTest, runWorkersForTest } from './workers';

/**
 * A real cluster with every role's worker (orchestration, reference, each satellite),
 * the class list recorded, and handles on the operational and reference databases.
 */
export async function preparationTestBed(name: string, edit?: (raw: Record<string, any>) => void) {
  const { config, configFile } = await testCluster(name, edit);
  await runWorkersForTest(config, [
    { role: 'orchestration' },
    { role: 'reference' },
    ...config.satellites.map((s) => ({ role: 'satellite' as const, name: s.name })),
  ]);
  const { client } = await clientForTest(config);
  const ops = await operationalDatabase(config);
  const ref = await referenceDatabase(config);
  await enrollClass(client, config);
  return { config, configFile, client, ops, ref };
}

export async function operationalDatabase(config: ClusterConfig): Promise<Database> {
  const ops = openDatabase(databaseUrl(config, config.operationalDatabase), { applicationName: 'test-ops' });
  onTeardown(() => ops.close());
  await migrateOperational(ops);
  return ops;
}

export async function referenceDatabase(config: ClusterConfig): Promise<Database> {
  const ref = openDatabase(databaseUrl(config, config.reference.database), { applicationName: 'test-ref' });
  onTeardown(() => ref.close());
  return ref;
}

/** A small slice of the sample data set: enough to make a real lesson quickly. */
export function smallSample(config: ClusterConfig, records = 150, documents = 50): InboxItem[] {
  const all = sampleBatch(0, sampleSubjects(config.reference.subjects));
  return [...all.filter((i) => i.kind === 'record').slice(0, records), ...all.filter((i) => i.kind === 'document').slice(0, documents)];
}

/** A document with a word nothing else holds, to search for through HAProxy. */
export function markedDocument(config: ClusterConfig, word: string, id = `article-${word}`): InboxItem {
  return {
    subject: sampleSubjects(config.reference.subjects).documents,
    kind: 'document',
    externalId: id,
    payload: { title: `Field notes on the ${word} colony`, body: `Observers counted every ${word} along the shore, twice.` },
  };
}

export const drop = (ops: Database, items: InboxItem[]) => dropIntoInbox(ops, items);

export async function waitForStatus(
  handle: WorkflowHandle,
  until: (status: PreparationStatus) => boolean,
  what: string,
  deadlineMs = 120_000,
): Promise<PreparationStatus> {
  const end = Date.now() + deadlineMs;
  let last: PreparationStatus | undefined;
  while (Date.now() < end) {
    last = await handle.query<PreparationStatus>('status').catch(() => last);
    if (last && until(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`prepareLesson did not reach "${what}" in ${deadlineMs / 1000} s; last status: ${JSON.stringify(last)}`);
}

export async function servedVersions(config: ClusterConfig): Promise<string[]> {
  return Promise.all(
    config.satellites.map(async (s) => {
      const response = await fetch(`${s.url}version`).catch(() => undefined);
      return response?.status === 200 ? (await response.text()).trim() : `(HTTP ${response?.status ?? 'no answer'})`;
    }),
  );
}

export type { Client };
