/**
 * A slave's side of the master's HTTP API (src/master/api.ts). Failures come back as
 * MasterCallError with a `kind` to decide by: `MasterUnreachable` (no answer: network,
 * timeout, the master down) and `MasterFailed` (an answer, but a failing one: a 5xx, or
 * one that is not JSON) are worth trying again; every other kind is an answer that
 * trying again will not change. The two are kept apart because they mean different
 * things to an operator: a master that answers is reachable, and one that fails the same
 * way again and again needs someone (slaveSync halts on it). A third, `MasterUntrusted`,
 * is an https master the slave cannot verify (a certificate its CA did not sign, one for
 * another name, expired, or no TLS at all): nothing is sent to it, and trying again does not
 * help, so slaveSync halts and says why.
 *
 * undici (Node's own HTTP client, as a package) rather than the global fetch: it takes the
 * CA to verify the master by for this client alone, where the global fetch knows only the
 * process-wide NODE_EXTRA_CA_CERTS. Its `request`, not its `fetch`: the same connections
 * without WHATWG streams around each body, which cost a slave's endpoint about a
 * millisecond of CPU per save (measured: 32 clients saving through one slave).
 */
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import type { BlocksAfterAnswer, SaveAnswer, SaveRequest } from '../../shared/commitblock';
import { authorizationHeader } from '../../master/credentials';

export class MasterCallError extends Error {
  override readonly name = 'MasterCallError';
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.kind === 'MasterUnreachable' || this.kind === 'MasterFailed';
  }
}

export interface BlocksAfterOptions {
  limit?: number;
  waitMs?: number;
  applied?: number;
  at?: { origin: string; idempotencyKey: string } | null;
  signal?: AbortSignal;
}

export interface MasterClient {
  readonly url: string;
  /**
   * `applied`: what this slave has committed, when it asks ahead of it (prefetch); `at`: who
   * made its block `after`, which the master checks against its own.
   */
  blocksAfter(after: number, options: BlocksAfterOptions): Promise<BlocksAfterAnswer>;
  /** The master's answer as it came: not a model until the caller validated it (catchUp's verifiedModel). */
  model(checksum: string, signal?: AbortSignal): Promise<unknown>;
  save(request: Omit<SaveRequest, 'origin'>, options: { timeoutMs: number; signal?: AbortSignal }): Promise<SaveAnswer>;
}

/** Time a request may take beyond the long poll's own wait before the master counts as unreachable. */
const ANSWER_MARGIN_MS = 10_000;

export interface MasterClientOptions {
  /** http(s)://host:port of the master's API (masterApiUrl). */
  url: string;
  slave: string;
  credential: string;
  /** PEM CA certificate(s) an https master must be verified by; none: the system's CAs. */
  ca?: string;
  /** The name the master's certificate must hold, when `url` reaches it by another (a proxy, a port forward). */
  certifiedAs?: string;
}

export function createMasterClient(options: MasterClientOptions): MasterClient {
  const authorization = authorizationHeader(options.slave, options.credential);
  const { certifiedAs } = options;
  const dispatcher = new Agent({
    connect: {
      ...(options.ca ? { ca: options.ca } : {}),
      ...(certifiedAs ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(certifiedAs, cert) } : {}),
    },
  });
  const call = async <T>(method: 'GET' | 'POST', route: string, timeoutMs: number, body?: unknown, signal?: AbortSignal): Promise<T> => {
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Dispatcher.ResponseData;
    let text: string;
    try {
      response = await request(`${options.url}${route}`, {
        method,
        headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        dispatcher,
      });
      text = await response.body.text();
    } catch (err) {
      if (signal?.aborted) throw err;
      const untrusted = tlsFailure(err);
      if (untrusted) {
        throw new MasterCallError(
          'MasterUntrusted',
          `could not verify the master at ${options.url}: ${untrusted}; nothing was sent to it. Check that master.api.tls.certFile is valid for ` +
            `"${certifiedAs ?? new URL(options.url).hostname}" and signed by what master.api.tls.caFile holds, then restart this slave's worker and resume it`,
        );
      }
      const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : describeNetworkError(err);
      throw new MasterCallError('MasterUnreachable', `the master at ${options.url} is unreachable: ${why}`);
    }
    const status = response.statusCode;
    let payload: { error?: string; message?: string } & Record<string, unknown>;
    try {
      payload = JSON.parse(text);
    } catch {
      throw new MasterCallError('MasterFailed', `the master at ${options.url} failed: it answered HTTP ${status} with something that is not JSON`);
    }
    if (status >= 200 && status < 300) return payload as T;
    const kind = payload.error ?? 'MasterError';
    const message = payload.message ?? `HTTP ${status}`;
    // A failing or stopping master (5xx): worth trying again, but it answered.
    if (status >= 500) throw new MasterCallError('MasterFailed', `the master at ${options.url} failed: it answered HTTP ${status} (${message})`);
    throw new MasterCallError(kind, `the master at ${options.url} refused: ${message}`);
  };
  return {
    url: options.url,
    blocksAfter: (after, { limit = 500, waitMs = 0, applied, at, signal }) => {
      const query = new URLSearchParams({ after: String(after), limit: String(limit), waitMs: String(waitMs) });
      if (applied !== undefined) query.set('applied', String(applied));
      if (at) {
        query.set('atOrigin', at.origin);
        query.set('atKey', at.idempotencyKey);
      }
      return call<BlocksAfterAnswer>('GET', `/v1/blocks?${query}`, waitMs + ANSWER_MARGIN_MS, undefined, signal);
    },
    model: async (checksum, signal) =>
      (await call<{ model?: unknown }>('GET', `/v1/models/${encodeURIComponent(checksum)}`, ANSWER_MARGIN_MS, undefined, signal)).model,
    save: (request, { timeoutMs, signal }) => call<SaveAnswer>('POST', '/v1/saves', timeoutMs, request, signal),
  };
}

/**
 * Node's codes for a certificate it could not verify (OpenSSL's X509 verification errors
 * and the host-name check), and for an https request answered by something that does not
 * speak TLS.
 */
const TLS_FAILURES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'EPROTO',
]);

/** The network's own error: undici's request throws it as it is; fetch wrapped it as the `cause`. */
function networkCause(err: unknown): { code?: string; message?: string } | undefined {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e?.cause ?? e;
}

/** What was wrong with the master's TLS, when that is why the request failed. */
function tlsFailure(err: unknown): string | undefined {
  const cause = networkCause(err);
  if (!cause?.code || !TLS_FAILURES.has(cause.code)) return undefined;
  return `${cause.message ?? cause.code} (${cause.code})`;
}

function describeNetworkError(err: unknown): string {
  const cause = networkCause(err);
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
