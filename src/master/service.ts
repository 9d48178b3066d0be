/**
 * The master's process: its database (replica tables migrated at start), the HTTP API
 * the slaves pull from and save through, and retention on a timer.
 */
import type { MetricMeter } from '@temporalio/common';
import type { ClusterConfig } from '../config/schema';
import { openDatabase, type Database } from '../db/database';
import type { Logger } from '../logging';
import { migrateReplica } from '../model/deploy';
import { databaseUrl, masterApiUrl } from '../stack/endpoints';
import { buildMasterApi } from './api';
import { pruneCommitblocks } from './commitblocks';
import { slaveCredential } from './credentials';
import { openNewsFeed } from './newsFeed';
import { readMasterTls, TlsFileError } from './tls';

export interface MasterService {
  db: Database;
  /** http(s)://host:port of the API. */
  url: string;
  /** Runs retention now (the timer does it every master.pruneInterval). */
  prune(): Promise<{ pruned: number; upTo: number }>;
  close(): Promise<void>;
}

/** How long a stopping master waits for requests in flight before it closes every connection. */
const CLOSE_GRACE_MS = 2_000;

export class MasterConfigError extends Error {
  override readonly name = 'MasterConfigError';
}

export async function startMasterService(config: ClusterConfig, log: Logger, meter?: MetricMeter): Promise<MasterService> {
  const master = config.master;
  if (!master) throw new MasterConfigError('the config has no master');
  let tls;
  try {
    tls = readMasterTls(config);
  } catch (err) {
    if (err instanceof TlsFileError) throw new MasterConfigError(err.message);
    throw err;
  }
  const url = databaseUrl(config, master.database);
  const db = openDatabase(url, { max: 20, applicationName: 'lessonplan-master' });
  const news = openNewsFeed(url, log);
  try {
    await migrateReplica(db);
    const credentials = new Map(config.slaves.map((s) => [s.name, slaveCredential(config, s)]));
    const app = buildMasterApi({ db, news, credentials, log, meter, tls });
    await app.listen({ host: master.api.host, port: master.api.port });
    const registered = config.slaves.map((s) => s.name);
    const prune = async () => {
      const result = await pruneCommitblocks(db, registered, master.keepBlocksFor);
      if (result.pruned > 0) log.info(result, 'pruned commitblocks every slave has applied');
      return result;
    };
    const timer = setInterval(() => {
      prune().catch((err) => log.warn({ err: (err as Error).message }, 'retention failed; trying again later'));
    }, master.pruneInterval);
    timer.unref();
    const apiUrl = masterApiUrl(config);
    log.info({ api: apiUrl, slaves: registered }, 'master API listening');
    return {
      db,
      url: apiUrl,
      prune,
      async close() {
        clearInterval(timer);
        // Long polls answer at once; saves in flight get a moment to commit and answer.
        await news.close();
        const closing = app.close();
        // Then whatever is still open goes: a connection that never sent a request counts as
        // busy to Node's server, which would otherwise wait out its keep-alive (72 s).
        const force = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
        await closing;
        clearTimeout(force);
        await db.close();
      },
    };
  } catch (err) {
    await news.close();
    await db.close();
    throw err;
  }
}
