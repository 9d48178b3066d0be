/**
 * Per-slave credentials for the master's API. A slave with `credentialEnv` takes its
 * credential from that environment variable (the master reads the same variable to
 * check it). Without one, on a single machine (the embedded default), the credential is
 * a random secret in `<dataDir>/credentials/<slave>` (mode 600), made by whichever
 * process needs it first. Credentials are never logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClusterConfig, SlaveConfig } from '../config/schema';

export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

export function slaveCredential(config: ClusterConfig, slave: SlaveConfig): string {
  return secret(config, slave.credentialEnv, slave.name, `slave ${slave.name}'s credential for the master`);
}

/**
 * The token the application on a slave's host sends to the slave's save endpoint (HTTP
 * Bearer): from `saveEndpoint.tokenEnv`, or `<dataDir>/credentials/<slave>.saves`.
 */
export function saveEndpointToken(config: ClusterConfig, slave: SlaveConfig): string {
  return secret(config, slave.saveEndpoint?.tokenEnv, `${slave.name}.saves`, `the token of slave ${slave.name}'s save endpoint`);
}

/** A secret from an environment variable, or a random one in `<dataDir>/credentials/<file>` made once. */
function secret(config: ClusterConfig, env: string | undefined, fileName: string, what: string): string {
  if (env) {
    const value = process.env[env];
    if (!value) throw new CredentialError(`the environment variable ${env} (${what}) is not set`);
    return value;
  }
  const dir = path.join(config.dataDir, 'credentials');
  const file = path.join(dir, fileName);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(file)) {
    // Written aside and linked into place, so that a process reading at the same time never sees a half-written file.
    const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(aside, randomBytes(24).toString('base64url'), { mode: 0o600 });
    try {
      linkSync(aside, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(aside, { force: true });
    }
  }
  const value = readFileSync(file, 'utf8').trim();
  if (!value) throw new CredentialError(`${file}: ${what} is an empty file; delete it to make a new one`);
  return value;
}

/** True when the Authorization header is `Bearer <token>`, compared in constant time. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (\S+)$/.exec(header ?? '');
  if (!match) return false;
  const digest = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/** The Authorization header a slave sends: HTTP Basic with its name and credential. */
export function authorizationHeader(slave: string, credential: string): string {
  return `Basic ${Buffer.from(`${slave}:${credential}`).toString('base64')}`;
}

/** Checks an Authorization header against the known credentials; returns the slave's name or null. */
export function authenticate(header: string | undefined, credentials: Map<string, string>): string | null {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const name = decoded.slice(0, colon);
  const expected = credentials.get(name);
  if (expected === undefined) return null;
  // Compare digests, so the comparison takes the same time whatever the lengths.
  const digest = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(decoded.slice(colon + 1)), digest(expected)) ? name : null;
}
