/**
 * What `lesson watch` shows, as data: the teacher's line, a row per group and per
 * satellite, and a notice (a halt, a wait for the maintenance window). Pure, so the
 * mapping is tested without a terminal; watchBars.ts draws it.
 */
import type { PreparationStatus } from '../shared/preparation';
import type { RolloutStatus, SatelliteStatus } from '../shared/rollout';
import { resumeCommand } from '../shared/summaries';
import type { LiveCommand } from './liveCommands';
import { formatBytes } from './progress';

export interface BarRow {
  key: string;
  label: string;
  value: number;
  /** 0 when the total is not known yet. */
  total: number;
  /** Words after the bar: state, bytes, examination. */
  detail: string;
}

export interface WatchView {
  teacher: string;
  /** A command of the cluster's own running on the reference, and the last line it printed. */
  running?: string;
  groups: BarRow[];
  satellites: BarRow[];
  notice?: string;
}

/** Satellites whose part of the rollout is over (a group's bar counts these). */
const SETTLED: SatelliteStatus['state'][] = ['passed', 'ready', 'serving-new', 'skipped', 'restored'];

/**
 * @param liveBytes bytes a satellite's running copy has reported (its activity's
 *   heartbeat), which the rollout's own status only learns when the copy ends.
 */
export function watchView(
  prep: PreparationStatus | undefined,
  rollout: RolloutStatus | undefined,
  liveBytes: Map<string, number> = new Map(),
  liveCommand?: LiveCommand,
): WatchView {
  const subjects = prep?.subjects.map((s) => `${s.subject} ${s.applied}${s.refused ? ` (+${s.refused} refused)` : ''}`).join(', ');
  const teacher = prep
    ? `teacher: ${prep.phase}${prep.lessonId ? `, lesson ${prep.lessonId}` : ''}${subjects ? `; applied: ${subjects}` : ''}`
    : rollout
      ? `rollout of lesson ${rollout.lessonId}`
      : 'waiting for the run to start';
  const lessonBytes = prep?.stats?.bytesChanged ?? 0;

  const groups: BarRow[] = [];
  const satellites: BarRow[] = [];
  for (const g of rollout?.groups ?? []) {
    const settled = g.satellites.filter((s) => SETTLED.includes(s.state)).length;
    groups.push({ key: `group:${g.name}`, label: g.name, value: settled, total: g.satellites.length, detail: g.state });
    for (const s of g.satellites) {
      const copied = s.state === 'copying' ? (liveBytes.get(s.name) ?? 0) : s.bytesCopied;
      const total = Math.max(lessonBytes, copied);
      const done = s.state !== 'copying' && s.bytesCopied > 0;
      const exam = s.examination ? (s.examination.passed ? ', exam passed' : `, exam FAILED: ${s.examination.failures.join('; ')}`) : '';
      satellites.push({
        key: `sat:${s.name}`,
        label: `${g.name}/${s.name}`,
        value: done ? total : copied,
        total,
        detail: `${s.state}, ${formatBytes(copied)} copied${exam}`,
      });
    }
  }

  let notice: string | undefined;
  if (prep?.halted) notice = `HALTED in ${prep.halted.step}: ${prep.halted.reason}; after the fix: ${resumeCommand()}`;
  else if (rollout?.halted) {
    const h = rollout.halted;
    notice = `HALTED in ${h.step} of group ${h.group} (${h.satellites.join(', ')}): ${h.reason}; after the fix: ${resumeCommand(rollout.lessonId)}`;
  } else if (rollout?.window && !rollout.window.open) {
    notice = `waiting for the maintenance window (${rollout.window.spec}): group ${rollout.window.parkedBefore} goes in at ${rollout.window.opensAt}`;
  } else if (rollout?.paused) notice = `paused before the next group; ${resumeCommand(rollout.lessonId)} goes on`;
  const running = liveCommand ? `running ${liveCommand.command}: ${liveCommand.output.split('\n').at(-1) ?? ''}` : undefined;
  return { teacher, ...(running ? { running } : {}), groups, satellites, notice };
}
