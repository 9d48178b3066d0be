/**
 * Plain progress lines for a prepareLesson run and its rollout, printed as they change:
 * one line per phase, per subject, per satellite step. Polls the workflows' `status`
 * queries, so it works from any machine that reaches Temporal.
 */
import type { Client } from '@temporalio/client';
import type { PreparationStatus } from '../shared/preparation';
import { liveCommandOutput } from './liveCommands';
import { pollUntilStopped } from './polling';
import { readRun } from './runStatus';

export interface ProgressPrinter {
  /** `ended`: the run's result, when it has one; the last lines are drawn from it. */
  stop(ended?: PreparationStatus): Promise<void>;
}

export function printProgress(client: Client, workflowId: string, out: (line: string) => void, everyMs = 500): ProgressPrinter {
  const seen = new Set<string>();
  const say = (key: string, line: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    out(line);
  };
  const draw = async (ended?: PreparationStatus) => {
    try {
      const { prep, rollout } = await readRun(client, workflowId, ended);
      say(`phase:${prep.phase}`, `  prepareLesson: ${prep.phase}${prep.lessonId ? ` (lesson ${prep.lessonId})` : ''}`);
      for (const s of prep.subjects) {
        // A subject of the cluster's own says in its check's words what it found, and counts commands, not inbox items.
        if (s.found !== undefined) {
          const said = s.found.trim().split('\n').at(-1) || (s.waiting ? 'new matter' : 'nothing new');
          say(
            `subject:${s.subject}`,
            `  subject ${s.subject}: the check says: ${said}${s.unfiled ? '; the served folder holds unfiled changes' : ''}`,
          );
          if (s.applied) say(`applied:${s.subject}:${s.applied}`, `  subject ${s.subject}: ${s.applied} prepare commands done`);
        } else {
          say(`subject:${s.subject}`, `  subject ${s.subject}: ${s.waiting} new items in the inbox, ${s.unfiled} unfiled changes`);
          if (s.applied || s.refused)
            say(`applied:${s.subject}`, `  subject ${s.subject}: ${s.applied} items applied to the reference database, ${s.refused} refused`);
        }
        if (s.proofRead)
          say(
            `proof:${s.subject}:${s.proofRead.passed}`,
            `  subject ${s.subject}: proof-read ${s.proofRead.passed ? 'passed' : 'FAILED'} (${s.proofRead.checks} checks)`,
          );
      }
      // What a command of the cluster's own prints, line by line as the heartbeats bring it.
      const running = await liveCommandOutput(client, workflowId).catch(() => undefined);
      for (const printed of running?.output.split('\n') ?? []) {
        if (printed.trim()) say(`out:${running!.command}:${printed}`, `    ${running!.command}: ${printed}`);
      }
      if (prep.halted) say(`halt:${prep.halted.since}`, `  HALTED in "${prep.halted.step}": ${prep.halted.reason}`);
      if (prep.stats)
        say(
          'stats',
          `  filed: ${prep.stats.files} files, ${prep.stats.filesAdded} added, ${prep.stats.filesChanged} changed (${formatBytes(prep.stats.bytesChanged)})`,
        );
      if (rollout) {
        say(`rollout:${rollout.phase}`, `  holdLesson: ${rollout.phase}, ${rollout.serving} satellites serving`);
        for (const g of rollout.groups) {
          for (const s of g.satellites)
            say(`sat:${s.name}:${s.state}`, `    ${g.name}/${s.name}: ${s.state}${s.bytesCopied ? ` (${formatBytes(s.bytesCopied)} copied)` : ''}`);
        }
        if (rollout.halted)
          say(`rhalt:${rollout.halted.since}`, `  ROLLOUT HALTED in ${rollout.halted.step} of ${rollout.halted.group}: ${rollout.halted.reason}`);
      }
    } catch {
      // Not started yet, or between tasks: the next poll will tell.
    }
  };
  return pollUntilStopped(draw, everyMs);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
