/**
 * A real latency proxy between two of the test's own endpoints: Toxiproxy, built by
 * scripts/setup.sh under .tools/ (package.json config.toxiproxyVersion). One server per
 * caller, on loopback ports of its own; driven over its HTTP API. Used to put a slave
 * "20 ms away" from its master, and to cut the link between them.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freeStablePort, waitForPort } from '../../src/stack/ports';
import { PROJECT_ROOT } from '../../src/stack/toolPaths';

export interface LatencyProxy {
  /** host:port the client should use instead of the upstream. */
  listen: string;
  /** Adds `oneWayMs` in each direction (so `2 × oneWayMs` to a round trip). */
  delay(oneWayMs: number): Promise<void>;
  /** Cuts the link (connections refused and dropped), or brings it back. */
  setEnabled(enabled: boolean): Promise<void>;
  stop(): Promise<void>;
}

function toxiproxyPath(): string {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { config: { toxiproxyVersion: string } };
  const server = path.join(PROJECT_ROOT, '.tools/toxiproxy', pkg.config.toxiproxyVersion, 'toxiproxy-server');
  if (!existsSync(server)) throw new Error(`Toxiproxy ${pkg.config.toxiproxyVersion} is not built at ${server}; run: npm run setup`);
  return server;
}

/** Starts Toxiproxy with one proxy in front of `upstream` (host:port), listening on `listenPort` (or a free one). */
export async function startLatencyProxy(upstream: string, listenPort?: number): Promise<LatencyProxy> {
  listenPort ??= await freeStablePort();
  const apiPort = await freeStablePort(new Set([listenPort]));
  const server: ResultPromise = execa(toxiproxyPath(), ['-host', '127.0.0.1', '-port', String(apiPort)], { reject: false, all: true });
  if (!(await waitForPort(apiPort, 10_000))) {
    server.kill('SIGKILL');
    throw new Error(`Toxiproxy did not listen on 127.0.0.1:${apiPort}: ${(await server).all}`);
  }
  const api = async (route: string, body: unknown) => {
    const response = await fetch(`http://127.0.0.1:${apiPort}${route}`, { method: 'POST', body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`Toxiproxy ${route}: HTTP ${response.status} ${await response.text()}`);
  };
  const listen = `127.0.0.1:${listenPort}`;
  await api('/proxies', { name: 'link', listen, upstream, enabled: true });
  return {
    listen,
    async delay(oneWayMs) {
      for (const stream of ['upstream', 'downstream']) {
        await api('/proxies/link/toxics', {
          name: `delay-${stream}`,
          type: 'latency',
          stream,
          toxicity: 1,
          attributes: { latency: oneWayMs, jitter: 0 },
        });
      }
    },
    setEnabled: (enabled) => api('/proxies/link', { enabled }),
    async stop() {
      server.kill('SIGTERM');
      await server;
    },
  };
}
