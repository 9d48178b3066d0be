/** What `lesson watch` draws, from the workflows' statuses: rows per group and satellite, bytes, examinations, notices. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PreparationStatus } from '../src/shared/preparation';
import type { RolloutStatus, SatelliteStatus } from '../src/shared/rollout';
import { watchView } from '../src/operator/watchRows';

const sat = (name: string, state: SatelliteStatus['state'], extra: Partial<SatelliteStatus> = {}): SatelliteStatus => ({
  name,
  state,
  filesCopied: 0,
  bytesCopied: 0,
  bytesSent: 0,
  ...extra,
});

const prep = {
  phase: 'holding-lesson',
  lessonId: 'L1',
  subjects: [{ subject: 'records', waiting: 5, unfiled: 0, taken: 5, applied: 4, refused: 1 }],
  stats: { bytesChanged: 4096 },
  halted: null,
  summary: '',
  rollout: { workflowId: 'hold-lesson/L1' },
} as unknown as PreparationStatus;

const rollout = (over: Partial<RolloutStatus> = {}): RolloutStatus => ({
  lessonId: 'L1',
  phase: 'lesson',
  halted: null,
  paused: false,
  serving: 2,
  minServing: 2,
  groups: [
    {
      name: 'boys',
      state: 'in-classroom',
      satellites: [
        sat('boy-1', 'copying'),
        sat('boy-2', 'failed', { bytesCopied: 4096, examination: { passed: false, checks: 3, failures: ['query version: answer differs'] } }),
      ],
    },
    { name: 'girls', state: 'waiting', satellites: [sat('girl-1', 'serving-old'), sat('girl-2', 'serving-old')] },
  ],
  ...over,
});

test('a row per group and satellite: live bytes while copying, the examination when done', () => {
  const view = watchView(prep, rollout(), new Map([['boy-1', 1024]]));
  assert.equal(view.teacher, 'teacher: holding-lesson, lesson L1; applied: records 4 (+1 refused)');
  assert.deepEqual(
    view.groups.map((g) => [g.label, g.value, g.total, g.detail]),
    [
      ['boys', 0, 2, 'in-classroom'],
      ['girls', 0, 2, 'waiting'],
    ],
  );
  const [boy1, boy2, girl1] = view.satellites;
  assert.deepEqual([boy1!.label, boy1!.value, boy1!.total, boy1!.detail], ['boys/boy-1', 1024, 4096, 'copying, 1.0 kB copied']);
  assert.deepEqual([boy2!.value, boy2!.total], [4096, 4096]);
  assert.equal(boy2!.detail, 'failed, 4.0 kB copied, exam FAILED: query version: answer differs');
  assert.equal(girl1!.detail, 'serving-old, 0 B copied');
  assert.equal(view.notice, undefined);
});

test('a group counts the satellites through; a halt names the reason and the resume command', () => {
  const halted = rollout({
    halted: { step: 'lesson and examination', group: 'boys', satellites: ['boy-2'], reason: 'boy-2 failed the examination', since: 'now' },
  });
  halted.groups[0]!.satellites[0] = sat('boy-1', 'passed', { bytesCopied: 10, examination: { passed: true, checks: 3, failures: [] } });
  const view = watchView(prep, halted);
  assert.equal(view.groups[0]!.value, 1);
  assert.match(view.satellites[0]!.detail, /exam passed$/);
  assert.equal(
    view.notice,
    'HALTED in lesson and examination of group boys (boy-2): boy-2 failed the examination; after the fix: lessonplan lesson resume L1',
  );
});

test('a wait for the maintenance window, and a pause, are said in words', () => {
  const waiting = watchView(
    prep,
    rollout({
      phase: 'waiting-for-window',
      window: { spec: 'daily 02:00-04:00', open: false, opensAt: '2026-11-24T02:00:00.000Z', parkedBefore: 'girls' },
    }),
  );
  assert.equal(waiting.notice, 'waiting for the maintenance window (daily 02:00-04:00): group girls goes in at 2026-11-24T02:00:00.000Z');
  assert.match(watchView(prep, rollout({ paused: true })).notice!, /^paused before the next group; lessonplan lesson resume L1 goes on$/);
  assert.equal(watchView(undefined, undefined).teacher, 'waiting for the run to start');
});

test("a command of the cluster's own that runs shows with the last line it printed; none, no line", () => {
  const preparing = { ...prep, phase: 'preparing', rollout: undefined } as unknown as PreparationStatus;
  const view = watchView(preparing, undefined, new Map(), { command: 'reference.subjects[0].prepare[1]', output: 'indexing\n4,000 of 9,000 books' });
  assert.equal(view.running, 'running reference.subjects[0].prepare[1]: 4,000 of 9,000 books');
  assert.equal(watchView(preparing, undefined).running, undefined);
});
