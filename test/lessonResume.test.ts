/**
 * `lessonplan lesson resume <lessonId>`, the real command against a real Temporal server,
 * on rollouts (holdLesson with stubbed activities) in each state: one that runs and is
 * neither halted nor paused has nothing to resume (exit 1, its phase named, no signal
 * sent); a halted, a paused and a parked one are resumed as before.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { ORCHESTRATION_TASK_QUEUE, REFERENCE_TASK_QUEUE, satelliteTaskQueue } from '../src/shared/names';
import type { HoldLessonInput, RolloutStatus } from '../src/shared/rollout';
import { onTeardown, testConfigFile, testStack } from './helpers/stack';
import { clientForTest, runStubbedWorkers } from './helpers/workers';
import { FakeCluster } from './helpers/fakeCluster';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');
const SATELLITES = ['boy-1', 'boy-2', 'girl-1', 'girl-2'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fake cluster, with examinations that can be held until the test lets them end. */
class Rehearsal extends FakeCluster {
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  constructor() {
    super(SATELLITES);
    this.examHold = () => this.gate;
  }
  holdExaminations(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  endExaminations(): void {
    this.open();
  }
}

describe('lessonplan lesson resume on a rollout', async () => {
  const config = await testStack();
  const { client } = await clientForTest(config);
  let rehearsal = new Rehearsal();
  await runStubbedWorkers(config, {
    [REFERENCE_TASK_QUEUE]: () => rehearsal.reference(),
    ...Object.fromEntries(SATELLITES.map((name) => [satelliteTaskQueue(name), () => rehearsal.satellite(name)])),
  });
  // Whatever a failed test left behind: no examination held and no rollout running when the workers stop.
  const rehearsals: Rehearsal[] = [];
  const rollouts: WorkflowHandle[] = [];
  const rehearse = () => {
    rehearsal = new Rehearsal();
    rehearsals.push(rehearsal);
    return rehearsal;
  };
  onTeardown(async () => {
    for (const r of rehearsals) r.endExaminations();
    for (const h of rollouts) await h.terminate('test over').catch(() => undefined);
  });

  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-resume-'));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  const raw = parse(readFileSync(testConfigFile(), 'utf8'));
  raw.dataDir = config.dataDir;
  const configFile = path.join(dir, 'cluster.yaml');
  writeFileSync(configFile, stringify(raw));
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });

  let counter = 0;
  const start = async (overrides: Partial<HoldLessonInput> = {}): Promise<{ lessonId: string; handle: WorkflowHandle }> => {
    const lessonId = `resume-${++counter}-${Date.now()}`;
    const input: HoldLessonInput = {
      cluster: config.cluster,
      lesson: { lessonId, source: '/nowhere', manifestSha256: 'x', fileCount: 1, totalBytes: 10, testQueries: [] },
      groups: [
        { name: 'boys', satellites: ['boy-1', 'boy-2'] },
        { name: 'girls', satellites: ['girl-1', 'girl-2'] },
      ],
      loadBalancerControl: true,
      healthCheckWaitMs: 0,
      lastCigaretteMs: 0,
      coffeeMs: 0,
      minServingSatellites: 2,
      requestedBy: 'test',
      ...overrides,
    };
    const handle = await client.workflow.start('holdLesson', {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: `hold-lesson/${lessonId}`,
      args: [input],
    });
    rollouts.push(handle);
    return { lessonId, handle };
  };
  const waitFor = async (handle: WorkflowHandle, done: (s: RolloutStatus) => boolean, what: string) => {
    for (let i = 0; i < 400; i++) {
      const status = await handle.query<RolloutStatus>('status');
      if (done(status)) return status;
      await sleep(50);
    }
    assert.fail(`the rollout never got ${what}`);
  };
  const examining = (s: RolloutStatus) => s.groups[0]!.satellites.some((x) => x.state === 'examining');
  const resumeSignals = async (handle: WorkflowHandle) => {
    const history = await handle.fetchHistory();
    return (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'resume').length;
  };

  test('running, neither halted nor paused: nothing to resume, its phase named, exit 1, no signal sent', { timeout: 60_000 }, async () => {
    rehearse();
    rehearsal.holdExaminations();
    const { lessonId, handle } = await start();
    await waitFor(handle, examining, 'to the examination');

    const result = await lessonplan('lesson', 'resume', lessonId);
    assert.equal(result.exitCode, 1, `${result.stdout}\n${result.stderr}`);
    assert.equal(result.stdout, '');
    assert.equal(
      result.stderr.trimEnd(),
      `error: nothing to resume: the rollout hold-lesson/${lessonId} is in phase lesson, neither halted, paused nor waiting for its maintenance window`,
    );
    assert.equal(await resumeSignals(handle), 0, 'no resume signal reached the rollout');

    rehearsal.endExaminations();
    assert.equal(((await handle.result()) as RolloutStatus).phase, 'done');
    const ended = await lessonplan('lesson', 'resume', lessonId);
    assert.equal(ended.exitCode, 1, ended.stderr);
    assert.match(ended.stderr.trimEnd(), new RegExp(`^error: nothing to resume: the rollout hold-lesson/${lessonId} is in phase done`));
  });

  test('halted: resume is sent and the failed step runs again', { timeout: 60_000 }, async () => {
    rehearse();
    rehearsal.failExam.add('boy-2');
    const { lessonId, handle } = await start();
    await waitFor(handle, (s) => s.phase === 'halted', 'halted');
    rehearsal.failExam.clear();
    const result = await lessonplan('lesson', 'resume', lessonId);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout.trimEnd(), `resume sent to hold-lesson/${lessonId}`);
    assert.equal(((await handle.result()) as RolloutStatus).phase, 'done');
  });

  test('paused (the pause asked for, and the rollout held by it): resume is sent and it goes on', { timeout: 60_000 }, async () => {
    rehearse();
    rehearsal.holdExaminations();
    const { lessonId, handle } = await start();
    await waitFor(handle, examining, 'to the examination');
    await handle.signal('pause');
    // Asked for while the examination runs: the rollout is still in its lesson phase, but paused.
    await waitFor(handle, (s) => s.paused, 'paused');
    const early = await lessonplan('lesson', 'resume', lessonId);
    assert.equal(early.exitCode, 0, early.stderr);
    assert.equal((await waitFor(handle, (s) => !s.paused, 'unpaused')).paused, false);

    await handle.signal('pause');
    await waitFor(handle, (s) => s.paused, 'paused');
    rehearsal.endExaminations();
    await waitFor(handle, (s) => s.phase === 'paused', 'held by the pause');
    const result = await lessonplan('lesson', 'resume', lessonId);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout.trimEnd(), `resume sent to hold-lesson/${lessonId}`);
    assert.equal(((await handle.result()) as RolloutStatus).phase, 'done');
  });

  test('waiting for its maintenance window: resume lets it go on outside the window', { timeout: 60_000 }, async () => {
    rehearse();
    const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
    // A one-minute window twelve hours away: closed now, whatever the time of day.
    const opens = Math.floor(Date.now() / 60_000) * 60_000 + 12 * 3_600_000;
    const { lessonId, handle } = await start({ maintenanceWindow: `daily ${hhmm(opens)}-${hhmm(opens + 60_000)}` });
    await waitFor(handle, (s) => s.phase === 'waiting-for-window', 'parked before the window');
    const result = await lessonplan('lesson', 'resume', lessonId);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout.trimEnd(), `resume sent to hold-lesson/${lessonId}`);
    const status = (await handle.result()) as RolloutStatus;
    assert.equal(status.phase, 'done');
    assert.equal(status.window?.ignored, true);
  });
});
