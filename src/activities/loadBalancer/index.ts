/**
 * Load balancer control through HAProxy's runtime API. Served by the reference
 * machine's worker (task queue `reference`), which reaches the load balancer's admin
 * socket in the local cluster and over TCP in production.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { isHealthy, isServing, setServerStates, showServers, type ServerStat } from './runtimeApi';

export interface LoadBalancerDependencies {
  runtimeApi: string;
  backend: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createLoadBalancerActivities({ runtimeApi, backend }: LoadBalancerDependencies) {
  const servers = async (names: string[]): Promise<ServerStat[]> => {
    const all = await showServers(runtimeApi, backend);
    const missing = names.filter((n) => !all.some((s) => s.name === n));
    if (missing.length > 0) {
      throw ApplicationFailure.nonRetryable(
        `HAProxy backend ${backend} has no server named ${missing.join(', ')}; add them to its config (a stand-in <satellite>-exam is the satellite's host and examPort, "disabled")`,
        'UnknownServer',
      );
    }
    return all.filter((s) => names.includes(s.name));
  };

  return {
    /** Stop chatting, first half: no new requests go to these servers; open ones finish. */
    async drainServers(names: string[]): Promise<void> {
      await servers(names);
      await setServerStates(
        runtimeApi,
        backend,
        names.map((server) => ({ server, state: 'drain' as const })),
      );
    },

    /**
     * Waits until the servers' sessions reach zero, at most `deadlineMs` (never forever).
     * Returns the sessions still open when the deadline passed.
     */
    async waitUntilDrained(names: string[], deadlineMs: number): Promise<{ drained: boolean; openSessions: Record<string, number> }> {
      const until = Date.now() + deadlineMs;
      for (;;) {
        const stats = await servers(names);
        const open = Object.fromEntries(stats.filter((s) => s.sessions > 0).map((s) => [s.name, s.sessions]));
        Context.current().heartbeat(open);
        if (Object.keys(open).length === 0) return { drained: true, openSessions: {} };
        if (Date.now() > until) return { drained: false, openSessions: open };
        await sleep(100);
      }
    },

    /**
     * One runtime API request: `ready` servers take users, `drain` servers stop taking
     * new ones. The cutover between the last two groups uses it to swap them at once.
     */
    async switchServers(change: { ready: string[]; drain: string[]; maint?: string[] }): Promise<void> {
      const maint = change.maint ?? [];
      await servers([...change.ready, ...change.drain, ...maint]);
      await setServerStates(runtimeApi, backend, [
        ...change.ready.map((server) => ({ server, state: 'ready' as const })),
        ...change.drain.map((server) => ({ server, state: 'drain' as const })),
        ...maint.map((server) => ({ server, state: 'maint' as const })),
      ]);
    },

    /**
     * Waits until HAProxy's health checks report the servers up; `serving` also
     * requires them to take requests (not drained). Fails (to be retried) at the deadline.
     */
    async waitUntilHealthy(names: string[], options: { serving: boolean; deadlineMs: number }): Promise<ServerStat[]> {
      const until = Date.now() + options.deadlineMs;
      for (;;) {
        const stats = await servers(names);
        const ok = stats.every(options.serving ? isServing : isHealthy);
        Context.current().heartbeat(stats.map((s) => `${s.name}:${s.status}`));
        if (ok) return stats;
        if (Date.now() > until) {
          throw ApplicationFailure.retryable(
            `HAProxy does not report ${names.join(', ')} ${options.serving ? 'serving' : 'healthy'} after ${options.deadlineMs / 1000} s: ${stats.map((s) => `${s.name} ${s.status} (${s.checkStatus})`).join(', ')}`,
            'NotHealthy',
          );
        }
        await sleep(100);
      }
    },

    /** What HAProxy says of every server of the backend. */
    async readLoadBalancer(): Promise<ServerStat[]> {
      return showServers(runtimeApi, backend);
    },
  };
}

export type LoadBalancerActivities = ReturnType<typeof createLoadBalancerActivities>;
