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

/**
 * A free port for a service that binds it later (a config written now, a server started
 * after other things). Taken below Linux's ephemeral range (32768 and up by default), from
 * which the kernel hands out every port-0 bind: a port from freePort() can be handed to
 * another process (the Temporal dev server's internal listeners, say) before we bind it;
 * one from here cannot. `taken` keeps the ports of one caller distinct.
 */
export async function freeStablePort(taken: Set<number> = new Set()): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
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
 * holds it), else the one used last time if still free, else any free port.
 */
export async function choosePort(configured: number, setting: string, previous?: number): Promise<number> {
  if (configured > 0) {
    if (!(await isPortFree(configured))) throw new PortTakenError(configured, setting);
    return configured;
  }
  if (previous && (await isPortFree(previous))) return previous;
  return freePort();
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
