/**
 * Wakes waiting long polls when a save commits: one connection LISTENs on the channel
 * that every save NOTIFYs in its transaction (PostgreSQL delivers it at commit). If the
 * listening connection is lost, the feed reconnects, and the API looks again at least
 * every second anyway, so a lost notification costs latency, never a block.
 */
import pg from 'pg';
import type { Logger } from '../logging';
import { NEWS_CHANNEL } from './commitblocks';

export interface NewsFeed {
  /** Resolves at the next commit, or after `ms`, whichever comes first (at once once closed). */
  next(ms: number): Promise<void>;
  /** Set by close(): the master is stopping, and long polls answer with what there is. */
  readonly closed: boolean;
  close(): Promise<void>;
}

export function openNewsFeed(connectionString: string, log: Logger): NewsFeed {
  const waiters = new Set<() => void>();
  const wakeAll = () => {
    for (const wake of waiters) wake();
    waiters.clear();
  };
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString, application_name: 'lessonplan-master-news' });
    c.on('notification', wakeAll);
    c.on('error', (err) => {
      log.warn({ err: err.message }, 'the master lost its news connection; reconnecting');
      client = undefined;
      c.end().catch(() => undefined);
      retry = setTimeout(() => void connect(), 1_000);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${NEWS_CHANNEL}`);
      client = c;
      // Anything that committed while we were not listening: let the waiters look.
      wakeAll();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'the master could not listen for news; retrying');
      await c.end().catch(() => undefined);
      retry = setTimeout(() => void connect(), 1_000);
    }
  };
  // Not awaited, here and in the retries: the feed works without a connection (waiters
  // time out and look anyway), and connect() catches a failed connection, logs it and
  // tries again.
  void connect();

  return {
    get closed() {
      return closed;
    },
    next: (ms) =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        const timer = setTimeout(() => {
          waiters.delete(done);
          resolve();
        }, ms);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.add(done);
      }),
    async close() {
      closed = true;
      clearTimeout(retry);
      wakeAll();
      await client?.end().catch(() => undefined);
    },
  };
}
