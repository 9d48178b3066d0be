/**
 * Certificates for tests, made with the openssl command: a certificate authority of the
 * test's own and a server certificate it signed, valid for the names and addresses given
 * (what an operator's CA would issue for the master's host).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';

export interface TestCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A CA under `dir/<name>/` and a certificate for `altNames` (e.g. ["IP:127.0.0.1", "DNS:localhost"]) signed by it. */
export async function makeCertificates(dir: string, name: string, altNames: string[]): Promise<TestCertificates> {
  const at = path.join(dir, name);
  mkdirSync(at, { recursive: true });
  const file = (f: string) => path.join(at, f);
  const key = (out: string) => execa('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out]);
  await key(file('ca.key'));
  await execa('openssl', ['req', '-x509', '-new', '-key', file('ca.key'), '-subj', `/CN=${name} test CA`, '-days', '2', '-out', file('ca.crt')]);
  await key(file('server.key'));
  await execa('openssl', ['req', '-new', '-key', file('server.key'), '-subj', `/CN=${name} master`, '-out', file('server.csr')]);
  writeFileSync(file('server.ext'), `subjectAltName=${altNames.join(',')}\nextendedKeyUsage=serverAuth\n`);
  await execa('openssl', [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('server.ext'),
    '-out',
    file('server.crt'),
  ]);
  return { caFile: file('ca.crt'), certFile: file('server.crt'), keyFile: file('server.key') };
}

export const pem = (file: string) => readFileSync(file, 'utf8');
