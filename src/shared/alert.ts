/**
 * An alert: what a notifier (webhook, command) receives when something needs an
 * operator. One JSON object, the same for both; `key` is the same for every delivery
 * of one event, so a receiver can drop a repeat.
 */
export type AlertKind =
  'rollout-halted' | 'rollout-aborted' | 'preparation-halted' | 'preparation-aborted' | 'slave-halted' | 'slave-master-unreachable' | 'slave-lagging';

export interface Alert {
  key: string;
  kind: AlertKind;
  cluster: string;
  /** The workflow the event belongs to: where to look in the Temporal UI. */
  workflowId: string;
  /** One line that says what happened. */
  summary: string;
  /** Why, in the words of the step that failed. */
  reason: string;
  /** What the operator runs after the fix; absent when there is nothing to resume. */
  resumeCommand?: string;
  at: string;
}

/** What slaveSync needs to know to raise its alerts (from the config's `alerts`). */
export interface SlaveAlertPolicy {
  cluster: string;
  unreachableAfterMs: number;
  lagAboveBlocks: number;
  /** In seconds, as the lag in `status`. */
  lagAboveSeconds: number;
}
