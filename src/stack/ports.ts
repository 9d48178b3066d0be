/** Finding free ports on loopback, telling whether a port is taken, and by which process. */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
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
 * ephemeral range, and never one in `avoid`. The services get the number on their command line and bind it a
 * moment later; an ephemeral port could meanwhile be handed to the Temporal dev
 * server's own internal listeners (it picks them by binding port 0), and the server
 * then panics on the collision.
 */
export async function choosePort(configured: number, setting: string, previous?: number, avoid: Set<number> = new Set()): Promise<number> {
  if (configured > 0) {
    if (!(await isPortFree(configured))) throw new PortTakenError(configured, setting);
    return configured;
  }
  // `avoid`: ports the config gives other parts, which may not have started yet, and ports picked a moment ago.
  if (previous && previous < EPHEMERAL_RANGE_START && !avoid.has(previous) && (await isPortFree(previous))) return previous;
  return freeStablePort(new Set(avoid));
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

/** A process that listens on a TCP port. */
export interface PortHolder {
  pid: number;
  /** Its command line, arguments separated by spaces. */
  command: string;
}

/** Inodes of the sockets listening on the TCP port (any local address, IPv4 or IPv6), from /proc/net. */
function listeningSocketInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // no IPv6, or not Linux
    }
    // Columns: sl local_address(hex ip:hex port) rem_address st ... uid timeout inode; st 0A is LISTEN.
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '0A') continue;
      if (Number.parseInt(fields[1]!.split(':')[1]!, 16) === port) inodes.add(fields[9]!);
    }
  }
  return inodes;
}

/**
 * The processes listening on the port, read from /proc (what `ss -ltnp` shows).
 * Empty when nothing listens, or when the listener is a process this one may not look
 * into (another user's, when not root; another network namespace).
 */
export function portHolders(port: number): PortHolder[] {
  const inodes = listeningSocketInodes(port);
  if (inodes.size === 0) return [];
  const sockets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const holders: PortHolder[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // gone meanwhile, or not ours to see
    }
    const holds = fds.some((fd) => {
      try {
        return sockets.has(readlinkSync(`/proc/${entry}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let command: string;
    try {
      command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').replace(/\s+/g, ' ').trim();
    } catch {
      command = '';
    }
    holders.push({ pid: Number(entry), command: command || '(unknown command)' });
  }
  return holders;
}

/** Holders as an operator reads them: "pid 123 (node server.js)", long command lines shortened. */
export function describeHolders(holders: PortHolder[]): string {
  const short = (command: string) => (command.length > 100 ? `${command.slice(0, 97)}...` : command);
  return holders.map((h) => `pid ${h.pid} (${short(h.command)})`).join(', ');
}
