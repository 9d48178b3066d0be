/**
 * The project's own Prometheus figures, named once here for the workflows, the
 * activities, the master and the README. They go out through the Temporal SDK's
 * metric meter, so they appear on the same endpoint as the SDK's own metrics (each
 * worker's `/metrics`, see `metrics.bindAddress`). Workflow code may import this file:
 * it only builds instruments on the meter it is given.
 */
import type { MetricMeter } from '@temporalio/common';

/** How the instruments are made, with the name Prometheus shows (counters get `_total`). */
export const METRICS = {
  groupRolloutSeconds: {
    name: 'lessonplan_group_rollout_seconds',
    help: 'Time a group of satellites spent out of service in a rollout, from leaving the load balancer to serving the new lesson (halts included)',
  },
  bytesCopied: {
    name: 'lessonplan_bytes_copied',
    help: 'Bytes of lesson files rsync transferred to a satellite (changed files only)',
  },
  examinationFailures: {
    name: 'lessonplan_examination_failures',
    help: 'Examinations of a copied lesson that failed on a satellite',
  },
  slaveLagBlocks: {
    name: 'lessonplan_slave_lag_blocks',
    help: "Commitblocks the master holds that a slave has not applied yet, as of the slave's last pass",
  },
  slaveLagSeconds: {
    name: 'lessonplan_slave_lag_seconds',
    help: "Age of the oldest commitblock a slave has not applied yet, as of the slave's last pass (0 when caught up)",
  },
  saves: {
    name: 'lessonplan_saves',
    help: 'Saves the master committed (a repeated idempotency key is not counted again); rate() of it is saves per second',
  },
} as const;

export function groupRolloutSeconds(meter: MetricMeter) {
  return meter.createHistogram(METRICS.groupRolloutSeconds.name, 'float', 's', METRICS.groupRolloutSeconds.help);
}

export function bytesCopied(meter: MetricMeter) {
  return meter.createCounter(METRICS.bytesCopied.name, 'By', METRICS.bytesCopied.help);
}

export function examinationFailures(meter: MetricMeter) {
  return meter.createCounter(METRICS.examinationFailures.name, '1', METRICS.examinationFailures.help);
}

export function slaveLagBlocks(meter: MetricMeter) {
  return meter.createGauge(METRICS.slaveLagBlocks.name, 'int', '1', METRICS.slaveLagBlocks.help);
}

export function slaveLagSeconds(meter: MetricMeter) {
  return meter.createGauge(METRICS.slaveLagSeconds.name, 'float', 's', METRICS.slaveLagSeconds.help);
}

export function savesCommitted(meter: MetricMeter) {
  return meter.createCounter(METRICS.saves.name, '1', METRICS.saves.help);
}
