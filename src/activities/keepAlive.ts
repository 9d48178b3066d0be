/**
 * Heartbeats while long work runs, whether or not the work reports progress of its own:
 * steps such as `cp -al`, rsync on a large unchanged file, a test suite or pg_dump are
 * silent for a while, and the heartbeat timeout is there to notice a worker that died,
 * not a step that is busy.
 */
import { Context } from '@temporalio/activity';
import { HEARTBEAT_EVERY_MS } from '../shared/heartbeats';

export async function keepAlive<T>(work: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
