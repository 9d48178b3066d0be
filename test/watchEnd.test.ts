/**
 * `lesson watch` (bars on a terminal, plain lines elsewhere) ends on the run's final
 * state: the run may end between two polls, and what stays on the operator's screen must
 * be how it ended, not the poll before; nor does the watcher wait out a poll to stop.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Client } from '@temporalio/client';
import type { PreparationStatus } from '../src/shared/preparation';
import type { RolloutStatus, SatelliteStatus } from '../src/shared/rollout';
import { printProgress } from '../src/operator/progress';
import { showBars } from '../src/operator/watchBars';

const sat = (name: string, state: SatelliteStatus['state']): SatelliteStatus => ({ name, state, filesCopied: 0, bytesCopied: 0, bytesSent: 0 });
const rollout = (state: SatelliteStatus['state']): RolloutStatus =>
  ({
    lessonId: 'L1',
    phase: state === 'serving-new' ? 'done' : 'leave-classroom',
    halted: null,
    paused: false,
    serving: 2,
    minServing: 1,
    groups: [{ name: 'girls', state, satellites: [sat('girl-1', state), sat('girl-2', state)] }],
  }) as RolloutStatus;

const preparation = (phase: string) =>
  ({
    phase,
    lessonId: 'L1',
    subjects: [],
    halted: null,
    summary: '',
    rollout: { workflowId: 'hold-lesson/L1' },
  }) as unknown as PreparationStatus;

/**
 * A Temporal client whose two runs answer `status` with what `now` says. Once `closed`,
 * the runs have results and no worker answers their queries any more (a query of a closed
 * run needs a worker to replay it: it may be down, busy or slow by then).
 */
function fakeRuns() {
  const now = { prep: 'holding-lesson', rollout: rollout('ready'), closed: false };
  const client = {
    workflow: {
      getHandle: (id: string) => ({
        query: async () => {
          if (now.closed) throw new Error('no poller seen for the task queue');
          return id.startsWith('prepare') ? preparation(now.prep) : now.rollout;
        },
        describe: async () => ({ status: { name: now.closed ? 'COMPLETED' : 'RUNNING' } }),
        result: async () => {
          if (!now.closed) throw new Error('a test that waits on a running run is wrong');
          return id.startsWith('prepare') ? preparation(now.prep) : now.rollout;
        },
        // Live bytes and command output: none here.
        fetchHistory: async () => ({ events: [] }),
      }),
    },
  } as unknown as Client;
  return { now, client };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
};

test('the bars end on the state the run ended in, even when it ended between two polls', async () => {
  const { now, client } = fakeRuns();
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120, rows: 40 }) as unknown as NodeJS.WriteStream;
  let drawn = '';
  (stream as unknown as PassThrough).on('data', (chunk: Buffer) => (drawn += chunk.toString()));
  // One poll a minute: the first draws the run still leaving the classroom.
  const bars = showBars(client, 'prepare-lesson/teacher', stream, 60_000);
  await until(() => /girls\/girl-1/.test(drawn));
  assert.match(drawn, /girls\/girl-1 +\|[█░]+\| ready/);
  // The run ends now; the watcher, told so, stops the bars before the next poll.
  Object.assign(now, { prep: 'done', rollout: rollout('serving-new') });
  const stopping = Date.now();
  await bars.stop();
  assert.ok(Date.now() - stopping < 10_000, 'stopped without waiting out the poll');
  const last = drawn.slice(drawn.lastIndexOf('teacher:'));
  assert.match(last, /teacher: done/, 'the final frame has the final teacher line');
  assert.match(last, /girls\/girl-1 +\|[█░]+\| serving-new/, 'and the final satellite states');
});

test('the plain lines end with the state the run ended in', async () => {
  const { now, client } = fakeRuns();
  const lines: string[] = [];
  const progress = printProgress(client, 'prepare-lesson/teacher', (line) => lines.push(line), 60_000);
  await until(() => lines.some((l) => l.includes('girls/girl-1')));
  assert.ok(lines.includes('    girls/girl-1: ready'), lines.join('\n'));
  Object.assign(now, { prep: 'done', rollout: rollout('serving-new') });
  await progress.stop();
  assert.ok(lines.includes('  prepareLesson: done (lesson L1)'), lines.join('\n'));
  assert.ok(lines.includes('    girls/girl-1: serving-new'), lines.join('\n'));
});

test("the last frame is drawn from the runs' results, which need no worker to replay them", async () => {
  const { now, client } = fakeRuns();
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120, rows: 40 }) as unknown as NodeJS.WriteStream;
  let drawn = '';
  (stream as unknown as PassThrough).on('data', (chunk: Buffer) => (drawn += chunk.toString()));
  const bars = showBars(client, 'prepare-lesson/teacher', stream, 60_000);
  await until(() => /girls\/girl-1/.test(drawn));
  Object.assign(now, { prep: 'done', rollout: rollout('serving-new'), closed: true });
  await bars.stop(preparation('done'));
  const last = drawn.slice(drawn.lastIndexOf('teacher:'));
  assert.match(last, /teacher: done/);
  assert.match(last, /girls\/girl-1 +\|[█░]+\| serving-new/, 'the satellites as the rollout ended');

  const lines: string[] = [];
  now.closed = false;
  Object.assign(now, { prep: 'holding-lesson', rollout: rollout('ready') });
  const progress = printProgress(client, 'prepare-lesson/teacher', (line) => lines.push(line), 60_000);
  await until(() => lines.some((l) => l.includes('girls/girl-1')));
  Object.assign(now, { prep: 'done', rollout: rollout('serving-new'), closed: true });
  await progress.stop(preparation('done'));
  assert.ok(lines.includes('  prepareLesson: done (lesson L1)'), lines.join('\n'));
  assert.ok(lines.includes('    girls/girl-1: serving-new'), lines.join('\n'));
});
