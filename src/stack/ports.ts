/** Finding free ports on loopback, and telling whether a port is taken. */
import net from 'node:net';

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port the kernel just handed out; free at the time of asking. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Linux hands out port-0 binds from 32768 up (net.ipv4.ip_local_port_range's default). */
const EPHEMERAL_RANGE_START = 32_768;
/** Above the well-known service ports people run by hand (PostgreSQL 5432, Temporal 7233, 8080…). */
const STABLE_RANGE_START = 20_000;

/**
 * A free port for a service that binds it later (a config written now, a server started
 * after other things). Taken below Linux's ephemeral range (32768 and up by default), from
 * which the kernel hands out every port-0 bind: a port from freePort() can be handed to
 * another process (the Temporal dev server's internal listeners, say) before we bind it;
 * one from here cannot. `taken` keeps the ports of one caller distinct.
 */
export async function freeStablePort(taken: Set<number> = new Set()): Promise<number> {
  for (;;) {
    const port = STABLE_RANGE_START + Math.floor(Math.random() * (EPHEMERAL_RANGE_START - STABLE_RANGE_START));
    if (!taken.has(port) && (await isPortFree(port))) {
      taken.add(port);
      return port;
    }
  }
}

export class PortTakenError extends Error {
  override readonly name = 'PortTakenError';
  constructor(
    readonly port: number,
    readonly setting: string,
  ) {
    super(`port ${port} (${setting}) is taken by another process; stop that process, or set ${setting} to 0 to let lessonplan pick a free port`);
  }
}

/**
 * The port to use for a service: the configured one (refused when something else
 * holds it), else the one used last time if still free, else a free one below the
 * ephemeral range. The services get the number on their command line and bind it a
 * moment later; an ephemeral port could meanwhile be handed to the Temporal dev
 * server's own internal listeners (it picks them by binding port 0), and the server
 * then panics on the collision.
 */
export async function choosePort(configured: number, setting: string, previous?: number): Promise<number> {
  if (configured > 0) {
    if (!(await isPortFree(configured))) throw new PortTakenError(configured, setting);
    return configured;
  }
  if (previous && previous < EPHEMERAL_RANGE_START && (await isPortFree(previous))) return previous;
  return freeStablePort();
}

/** Waits until something accepts connections on the port, or the deadline passes. */
export async function waitForPort(port: number, deadlineMs: number, host = '127.0.0.1'): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
