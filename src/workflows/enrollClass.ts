/**
 * enrollClass: the teacher writes down the class list. Records which machine is the
 * reference and which satellites sit in which group in the operational database's
 * machine registry (what "check the lectureship" later reads), and reports it to the
 * task monitor.
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ReferenceActivities } from '../activities/reference';
import { REFERENCE_TASK_QUEUE } from '../shared/names';
import type { EnrollmentResult, Roster } from '../shared/roster';

const reference = proxyActivities<ReferenceActivities>({
  taskQueue: REFERENCE_TASK_QUEUE,
  startToCloseTimeout: '30s',
  // The reference worker may be down; give up after five minutes instead of waiting forever.
  scheduleToCloseTimeout: '5m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: ['InvalidRoster'] },
});

export async function enrollClass(roster: Roster): Promise<EnrollmentResult> {
  const startedAt = new Date().toISOString();
  const result = await reference.registerMachines(roster);
  const { workflowId, runId } = workflowInfo();
  await reference.writeReport({
    runKey: `${workflowId}/${runId}`,
    task: 'enrollClass',
    machine: roster.machines.find((m) => m.role === 'reference')?.name,
    status: 'ok',
    summary: `class list of ${roster.cluster}: ${result.enrolled.length} enrolled, ${result.updated.length} updated, ${result.retired.length} retired, ${result.unchanged.length} unchanged`,
    log: [...result.enrolled.map((m) => `enrolled ${m}`), ...result.updated.map((m) => `updated ${m}`), ...result.retired.map((m) => `retired ${m}`)],
    details: { ...result },
    startedAt,
    finishedAt: new Date().toISOString(),
  });
  return result;
}
