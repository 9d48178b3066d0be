/**
 * Delivers an alert to what the config names: a webhook (JSON POST, optional bearer
 * token) and/or a command (the JSON on its standard input). A delivery that fails
 * throws with a message that says which target and why; the caller decides whether to
 * try again. Webhook URLs often carry a secret in their path (chat integrations do), so
 * messages and logs name the webhook by its origin only, and the token never appears.
 */
import { execa } from 'execa';
import type { AlertsConfig } from '../config/schema';
import type { Alert } from '../shared/alert';

export class AlertDeliveryError extends Error {
  override readonly name = 'AlertDeliveryError';
  /** False when trying again cannot help (the config is wrong). */
  constructor(
    message: string,
    readonly retryable = true,
  ) {
    super(message);
  }
}

export interface Notifier {
  /** Where alerts go, safe to show. */
  readonly targets: string[];
  notify(alert: Alert): Promise<void>;
}

/** https://hooks.example/services/T0/B0/secret -> https://hooks.example/… */
export function webhookLabel(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname === '/' && !parsed.search ? '' : '/…'}`;
}

export function createNotifier(config: AlertsConfig, env: NodeJS.ProcessEnv = process.env): Notifier {
  const targets: string[] = [];
  if (config.webhook) targets.push(`webhook ${webhookLabel(config.webhook)}`);
  if (config.command) targets.push(`command ${config.command[0]}`);

  async function postToWebhook(url: string, body: string, key: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': key };
    if (config.webhookTokenEnv) {
      const token = env[config.webhookTokenEnv];
      if (!token) throw new AlertDeliveryError(`alerts.webhookTokenEnv: the environment variable ${config.webhookTokenEnv} is not set`, false);
      headers.authorization = `Bearer ${token}`;
    }
    let response: Response;
    try {
      response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(config.timeout) });
    } catch (err) {
      const cause = (err as Error).name === 'TimeoutError' ? `no answer within ${config.timeout} ms` : describeFetchError(err);
      throw new AlertDeliveryError(`the alert webhook ${webhookLabel(url)} could not be reached: ${cause}`);
    }
    // The answer's body is not read into the message: receivers may echo what they got, token included.
    await response.body?.cancel();
    if (!response.ok) throw new AlertDeliveryError(`the alert webhook ${webhookLabel(url)} answered ${response.status} ${response.statusText}`);
  }

  async function runCommand(command: string[], body: string, alert: Alert): Promise<void> {
    const [file, ...args] = command;
    const result = await execa(file!, args, {
      input: body,
      timeout: config.timeout,
      reject: false,
      env: { LESSONPLAN_ALERT_KIND: alert.kind, LESSONPLAN_ALERT_KEY: alert.key, LESSONPLAN_ALERT_SUMMARY: alert.summary },
    });
    if (result.timedOut) throw new AlertDeliveryError(`the alert command ${file} did not finish within ${config.timeout} ms`);
    if (result.failed) {
      const said =
        String(result.stderr ?? '')
          .trim()
          .split('\n')
          .slice(-1)[0] || result.shortMessage;
      throw new AlertDeliveryError(`the alert command ${file} failed (exit ${result.exitCode ?? '?'}): ${said}`);
    }
  }

  return {
    targets,
    async notify(alert) {
      const body = JSON.stringify(alert);
      // Both targets are tried even when one fails: a dead webhook must not silence the pager command.
      const outcomes = await Promise.allSettled([
        config.webhook ? postToWebhook(config.webhook, body, alert.key) : undefined,
        config.command ? runCommand(config.command, body, alert) : undefined,
      ]);
      const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []));
      if (failures.length > 0)
        throw new AlertDeliveryError(
          failures.map((f) => f.message).join('; '),
          failures.every((f) => !(f instanceof AlertDeliveryError) || f.retryable),
        );
    },
  };
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
