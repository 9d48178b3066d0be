/**
 * Live bars for `lesson watch` on a terminal: the teacher's line, a bar per group
 * (satellites through) and per satellite (bytes copied, examination), and a notice line
 * for a halt or a wait. Drawn with cli-progress, which redraws several bars in place and
 * leaves them on screen when stopped. Polls the same `status` queries as the plain lines.
 */
import cliProgress from 'cli-progress';
import type { Client } from '@temporalio/client';
import type { PreparationStatus } from '../shared/preparation';
import type { ProgressPrinter } from './progress';
import { liveCopyBytes } from './liveCopies';
import { liveCommandOutput } from './liveCommands';
import { pollUntilStopped } from './polling';
import { readRun } from './runStatus';
import { watchView, type BarRow } from './watchRows';

type Bar = ReturnType<cliProgress.MultiBar['create']>;

export function showBars(client: Client, workflowId: string, stream: NodeJS.WriteStream = process.stdout, everyMs = 500): ProgressPrinter {
  const multibar = new cliProgress.MultiBar(
    {
      format: '{label} |{bar}| {detail}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 24,
      stream,
      // Redrawn on every poll, whatever changed: heartbeats move bytes between state changes.
      forceRedraw: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const lines = new Map<string, Bar>();
  const bars = new Map<string, Bar>();
  const line = (key: string, text: string) => {
    if (!lines.has(key)) lines.set(key, multibar.create(1, 0, { text }, { format: '{text}' }));
    lines.get(key)!.update(0, { text });
  };
  const width = (rows: BarRow[]) => Math.max(0, ...rows.map((r) => r.label.length));
  const bar = (row: BarRow, pad: number) => {
    const payload = { label: row.label.padEnd(pad), detail: row.detail };
    if (!bars.has(row.key)) bars.set(row.key, multibar.create(Math.max(1, row.total), row.value, payload));
    const b = bars.get(row.key)!;
    b.setTotal(Math.max(1, row.total));
    b.update(row.value, payload);
  };

  const draw = async (ended?: PreparationStatus) => {
    try {
      const { prep, rollout } = await readRun(client, workflowId, ended);
      const rolloutId = prep.rollout?.workflowId;
      const satellites = rollout?.groups.flatMap((g) => g.satellites.map((s) => s.name)) ?? [];
      const live =
        rolloutId && rollout ? await liveCopyBytes(client, rolloutId, satellites).catch(() => new Map<string, number>()) : new Map<string, number>();
      const command = await liveCommandOutput(client, workflowId).catch(() => undefined);
      const view = watchView(prep, rollout, live, command);
      line('teacher', view.teacher);
      if (view.running || lines.has('running')) line('running', view.running ?? '');
      const pad = width([...view.groups, ...view.satellites]);
      for (const row of view.groups) bar(row, pad);
      for (const row of view.satellites) bar(row, pad);
      if (view.notice || lines.has('notice')) line('notice', view.notice ?? '');
    } catch {
      // Not started yet, or between tasks: the next poll will tell.
    }
  };

  const polling = pollUntilStopped(draw, everyMs);
  return {
    async stop(ended?: PreparationStatus) {
      await polling.stop(ended);
      multibar.stop();
    },
  };
}

/** Bars only where someone watches a terminal that can redraw; else plain lines. */
export function terminalCanDrawBars(stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && process.env.TERM !== 'dumb';
}
