/**
 * One line of plain words for where a run stands, for the Temporal UI's memo and for
 * alerts: what happens now, or why it is halted and the command that resumes it.
 */
import type { PreparationStatus } from './preparation';
import type { RolloutStatus } from './rollout';
import { describeCapacity } from './capacity';

export const resumeCommand = (lessonId?: string) => `lessonplan lesson resume${lessonId ? ` ${lessonId}` : ''}`;

export function summarizeRollout(status: RolloutStatus): string {
  const groups = status.groups.map((g) => `${g.name} ${g.state}`).join(', ');
  const capacity = status.capacity ? `; ${describeCapacity(status.capacity)}` : '';
  const head = `lesson ${status.lessonId}: ${status.phase}; ${status.serving} satellites serving (minimum ${status.minServing}); ${groups}${capacity}`;
  if (status.halted) {
    const h = status.halted;
    return `HALTED in ${h.step} of group ${h.group} (${h.satellites.join(', ')}): ${h.reason}. After the fix: ${resumeCommand(status.lessonId)}. ${head}`;
  }
  if (status.mixed) return `${head}; old and new lessons side by side since ${status.mixed.since} (${status.mixed.why})`;
  if (status.window && !status.window.open)
    return `${head}; waiting for the maintenance window (${status.window.spec}), opens ${status.window.opensAt}`;
  return head;
}

export function summarizePreparation(status: PreparationStatus): string {
  if (status.halted) {
    return `HALTED in ${status.halted.step}: ${status.halted.reason}. After the fix: ${resumeCommand()}`;
  }
  return `${status.phase}${status.lessonId ? `, lesson ${status.lessonId}` : ''}: ${status.summary}`;
}
