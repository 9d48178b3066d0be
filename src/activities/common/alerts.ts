/**
 * The `sendAlert` activity, on the hosts whose workflows raise alerts of their own
 * (slaves). A delivery that fails is retried by the activity's retry policy; a
 * missing token is not something a retry fixes.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { AlertDeliveryError, type Notifier } from '../../alerts/notifier';
import type { Alert } from '../../shared/alert';

export function createAlertActivities(notifier: Notifier | undefined) {
  return {
    /** Returns where the alert went; nowhere when the config has no `alerts`. */
    async sendAlert(alert: Alert): Promise<string[]> {
      if (!notifier) return [];
      await deliver(notifier, alert);
      return notifier.targets;
    },
  };
}

export type AlertActivities = ReturnType<typeof createAlertActivities>;

/** Delivers, turning failures into what Temporal should do with them. */
export async function deliver(notifier: Notifier, alert: Alert): Promise<void> {
  try {
    await notifier.notify(alert);
    activityLog()?.info(`alert ${alert.kind} delivered`, { alertKey: alert.key, targets: notifier.targets });
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof AlertDeliveryError && !err.retryable) throw ApplicationFailure.nonRetryable(message, 'AlertMisconfigured');
    throw ApplicationFailure.retryable(`alert ${alert.kind} not delivered: ${message}`, 'AlertNotDelivered');
  }
}

/** The activity's logger (it adds the workflow and activity ids); none when called outside an activity, as scripts and tests do. */
function activityLog() {
  try {
    return Context.current().log;
  } catch {
    return undefined;
  }
}
