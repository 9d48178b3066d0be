/**
 * The files of `master.api.tls`, read where they are used: the certificate and key by the
 * master's process, the CA by each slave's. Read at start, so a missing or unreadable
 * file stops the process with the field that names it instead of failing on the first
 * request; a changed file takes effect when the process restarts.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { ClusterConfig } from '../config/schema';

export class TlsFileError extends Error {
  override readonly name = 'TlsFileError';
}

export interface MasterTls {
  cert: string;
  key: string;
}

function readField(field: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TlsFileError(`master.api.tls.${field}: cannot read ${file} (${code ?? (err as Error).message})`);
  }
}

/** The master's certificate and key; none when the config has no `master.api.tls` (plain HTTP). */
export function readMasterTls(config: ClusterConfig): MasterTls | undefined {
  const tls = config.master?.api.tls;
  if (!tls) return undefined;
  const pair = { cert: readField('certFile', tls.certFile), key: readField('keyFile', tls.keyFile) };
  try {
    // Refuses a key that is not the certificate's, or files that are not PEM, before the port opens.
    createSecureContext(pair);
  } catch (err) {
    throw new TlsFileError(`master.api.tls: ${tls.certFile} and ${tls.keyFile} are not a usable certificate and key: ${(err as Error).message}`);
  }
  return pair;
}

/** The CA certificate(s) a slave verifies the master by; none: the system's CAs (or plain HTTP). */
export function readMasterCa(config: ClusterConfig): string | undefined {
  const caFile = config.master?.api.tls?.caFile;
  return caFile ? readField('caFile', caFile) : undefined;
}
