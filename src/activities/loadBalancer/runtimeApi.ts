/**
 * HAProxy's runtime API: one command line per connection, on a unix socket or a TCP
 * address. Several commands separated by ";" run one after another inside HAProxy
 * without any request in between, which is how the cutover swaps two groups at once.
 */
import net from 'node:net';

export class RuntimeApiError extends Error {
  override readonly name = 'RuntimeApiError';
}

/** Sends one command line; resolves with HAProxy's answer. */
export function runtimeCommand(address: string, command: string, timeoutMs = 5_000): Promise<string> {
  if (/[\r\n]/.test(command)) return Promise.reject(new RuntimeApiError('a runtime API command must be one line'));
  return new Promise((resolve, reject) => {
    const tcp = /^([^/:]+):(\d+)$/.exec(address);
    const socket = tcp ? net.connect({ host: tcp[1], port: Number(tcp[2]) }) : net.connect({ path: address });
    let answer = '';
    socket.setTimeout(timeoutMs);
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk) => (answer += chunk.toString('utf8')));
    socket.on('timeout', () =>
      socket.destroy(new RuntimeApiError(`HAProxy runtime API at ${address} did not answer "${command}" within ${timeoutMs} ms`)),
    );
    socket.on('error', (err) => reject(new RuntimeApiError(`HAProxy runtime API at ${address}: ${err.message}`)));
    socket.on('close', (hadError) => !hadError && resolve(answer));
  });
}

export type ServerAdminState = 'ready' | 'drain' | 'maint';

export interface ServerStat {
  name: string;
  /** HAProxy's status column: UP, DOWN, DRAIN, MAINT, NOLB, "UP 1/2" (going down), ... */
  status: string;
  /** Sessions currently open on the server. */
  sessions: number;
  /** Result of the last health check, e.g. L7OK, L4CON. */
  checkStatus: string;
}

/** The servers of one backend, from `show stat`. */
export async function showServers(address: string, backend: string): Promise<ServerStat[]> {
  const csv = await runtimeCommand(address, 'show stat');
  const lines = csv.split('\n').filter(Boolean);
  const header = lines[0]?.replace(/^# /, '').split(',');
  if (!header || !header.includes('svname')) throw new RuntimeApiError(`unexpected answer to "show stat" from ${address}: ${csv.slice(0, 200)}`);
  const col = (name: string) => header.indexOf(name);
  return lines
    .slice(1)
    .map((line) => line.split(','))
    .filter((f) => f[col('pxname')] === backend && !['BACKEND', 'FRONTEND'].includes(f[col('svname')]!))
    .map((f) => ({
      name: f[col('svname')]!,
      status: f[col('status')]!,
      sessions: Number(f[col('scur')]),
      checkStatus: f[col('check_status')] ?? '',
    }));
}

/** Sets the admin state of several servers in one runtime API request. */
export async function setServerStates(address: string, backend: string, changes: { server: string; state: ServerAdminState }[]): Promise<void> {
  if (changes.length === 0) return;
  for (const { server } of changes) {
    if (!/^[A-Za-z0-9_.-]+$/.test(server)) throw new RuntimeApiError(`invalid server name "${server}"`);
  }
  const command = changes.map(({ server, state }) => `set server ${backend}/${server} state ${state}`).join(';');
  const answer = (await runtimeCommand(address, command)).trim();
  // Successful "set server" commands answer nothing; anything else is HAProxy's complaint.
  if (answer) throw new RuntimeApiError(`HAProxy refused "${command}": ${answer}`);
}

/** Serving users: health checks pass and the server takes new requests. */
export const isServing = (s: ServerStat) => s.status === 'UP' || s.status.startsWith('UP ');
/** Healthy, whether or not it takes new requests (drained servers keep being checked). */
export const isHealthy = (s: ServerStat) => isServing(s) || s.status === 'DRAIN' || s.status === 'NOLB';
