/** A local HTTP receiver for alert webhooks: records what arrives; can be told to fail. */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Alert } from '../../src/shared/alert';
import { onTeardown } from './stack';

export interface Received {
  headers: IncomingHttpHeaders;
  alert: Alert;
}

export async function alertReceiver(pathname = '/hooks/secret-path-123') {
  const received: Received[] = [];
  let answer = 200;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (answer === 200 && req.url === pathname) received.push({ headers: req.headers, alert: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.statusCode = req.url === pathname ? answer : 404;
      // Echoes a header back, as some receivers do: a message built from the answer's body would leak it.
      res.end(`rejected ${String(req.headers.authorization)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTeardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const kinds = () => JSON.stringify(received.map((r) => `${r.alert.kind} ${r.alert.workflowId}`));
  return {
    url: `http://127.0.0.1:${port}${pathname}`,
    received,
    /** From now on answer with this status (and record nothing unless 200). */
    answerWith(status: number) {
      answer = status;
    },
    /** Waits until `n` alerts have arrived (or fails after the deadline). */
    waitFor(n: number, deadlineMs = 30_000): Promise<Received[]> {
      return poll(
        () => (received.length >= n ? received : undefined),
        deadlineMs,
        () => `expected ${n} alerts within ${deadlineMs} ms, got ${kinds()}`,
      );
    },
    /** Waits until an alert that matches has arrived, and returns it (or fails after the deadline). */
    async waitForAlert(matches: (alert: Alert) => boolean, deadlineMs = 30_000): Promise<Alert> {
      const found = await poll(
        () => received.find((r) => matches(r.alert)),
        deadlineMs,
        () => `no matching alert within ${deadlineMs} ms; got ${kinds()}`,
      );
      return found.alert;
    },
  };
}

/** Checks every 50 ms until `probe` finds something; fails with `why()` after the deadline. */
async function poll<T>(probe: () => T | undefined, deadlineMs: number, why: () => string): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(why());
    await new Promise((r) => setTimeout(r, 50));
  }
}
