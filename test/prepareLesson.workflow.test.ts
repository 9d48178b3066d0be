/**
 * prepareLesson's logic with stubbed activities, on the real Temporal server: a lesson
 * in progress means nothing to do (and no flag is set); a flag another run claimed
 * first does too; an abort sent while the rollout runs reaches holdLesson, which puts
 * the satellites back. The real parts are exercised by prepareLesson.integration.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { ORCHESTRATION_TASK_QUEUE, REFERENCE_TASK_QUEUE, satelliteTaskQueue } from '../src/shared/names';
import type { FiledLesson } from '../src/shared/lesson';
import type { PreparationStatus, PrepareLessonInput } from '../src/shared/preparation';
import type { RolloutStatus } from '../src/shared/rollout';
import { testStack } from './helpers/stack';
import { waitForStatus } from './helpers/preparation';
import { replayAndRecord } from './helpers/histories';
import { clientForTest, runStubbedWorkers } from './helpers/workers';

const SATELLITES = ['boy-1', 'boy-2'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The reference machine and two satellites in memory; every call is recorded. */
class Fakes {
  calls: string[] = [];
  busy = false;
  claimed = true;
  served = new Map(SATELLITES.map((s) => [s, 'old']));
  /** The copy waits until this resolves, so a test can act while the rollout runs. */
  copyGate: Promise<void> = Promise.resolve();

  reference() {
    const log = (call: string) => this.calls.push(call);
    return {
      checkLectureship: async () => log('checkLectureship'),
      lessonInProgress: async () => ({
        busy: this.busy,
        reason: this.busy ? 'a lesson is still being held: hold-lesson/x' : 'no lesson in progress',
      }),
      recordLessonRun: async (r: { workflowId: string }) => log(`recordLessonRun ${r.workflowId}`),
      setUpdatingFlag: async () => (log('setUpdatingFlag'), this.claimed),
      clearUpdatingFlag: async () => (log('clearUpdatingFlag'), true),
      countNewSubjectMatter: async () => ({ waiting: 3, unfiled: 0 }),
      updateReferenceDatabase: async (i: { subject: string }) => ({ subject: i.subject, taken: 3, applied: 3, refused: [] }),
      writeLessonFiles: async () => ({ filesWritten: 5, filesRemoved: 0, previous: null }),
      proofReadLesson: async () => ({ passed: true, checks: 4, failures: [], testQueries: [] }),
      fileLesson: async (i: { lessonId: string }) => {
        log('fileLesson');
        const lesson: FiledLesson = { lessonId: i.lessonId, source: '/nowhere', manifestSha256: 'x', fileCount: 5, totalBytes: 50, testQueries: [] };
        const stats = {
          records: 3,
          documents: 3,
          files: 5,
          totalBytes: 50,
          filesAdded: 5,
          filesChanged: 0,
          filesRemoved: 0,
          bytesChanged: 50,
          backupFile: '/b',
          backupBytes: 1,
        };
        return { lesson, stats, pruned: [] };
      },
      markLessonReady: async () => log('markLessonReady'),
      publishLesson: async () => log('publishLesson'),
      discardLesson: async () => (log('discardLesson'), true),
      closeNotebook: async () => [],
      writeReport: async (r: { status: string }) => (log(`report ${r.status}`), 1),
      // holdLesson's load balancer, on the same queue
      drainServers: async () => undefined,
      waitUntilDrained: async () => ({ drained: true, openSessions: {} }),
      switchServers: async () => undefined,
      waitUntilHealthy: async () => [],
      readLoadBalancer: async () => SATELLITES.map((name) => ({ name, status: 'UP' })),
    };
  }

  satellite(name: string) {
    return {
      servedLesson: async () => this.served.get(name)!,
      describeService: async () => ({ current: this.served.get(name) ?? null, webServerRunning: true }),
      stopWebServer: async () => 'stopped',
      startWebServer: async () => 'started',
      copyLesson: async (lesson: FiledLesson) => {
        await this.copyGate;
        return { lessonId: lesson.lessonId, filesCopied: 1, bytesChanged: 10, bytesSent: 10, alreadyCopied: false };
      },
      examineLesson: async () => ({ passed: true, checks: 1, failures: [] }),
      activateLesson: async (lessonId: string) => {
        this.served.set(name, lessonId);
        return { current: lessonId };
      },
    };
  }
}

describe('prepareLesson logic (stubbed activities, real Temporal server)', async () => {
  const config = await testStack();
  const { client } = await clientForTest(config);
  let fakes = new Fakes();
  await runStubbedWorkers(config, {
    [REFERENCE_TASK_QUEUE]: () => fakes.reference(),
    ...Object.fromEntries(SATELLITES.map((name) => [satelliteTaskQueue(name), () => fakes.satellite(name)])),
  });

  let counter = 0;
  const start = () => {
    const input: PrepareLessonInput = {
      cluster: 'stub',
      reference: 'teacher',
      subjects: ['records', 'documents'],
      requestedBy: 'test',
      rollout: {
        cluster: 'stub',
        groups: [
          { name: 'boys', satellites: ['boy-1'] },
          { name: 'girls', satellites: ['boy-2'] },
        ],
        loadBalancerControl: true,
        healthCheckWaitMs: 0,
        lastCigaretteMs: 0,
        coffeeMs: 0,
        minServingSatellites: 1,
      },
    };
    return client.workflow.start('prepareLesson', {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: `prepare-lesson/stub-${++counter}-${Date.now()}`,
      args: [input],
    });
  };

  test('a lesson still being held: nothing to do, and the flag is never touched', { timeout: 60_000 }, async () => {
    fakes = new Fakes();
    fakes.busy = true;
    const status = (await (await start()).result()) as PreparationStatus;
    assert.equal(status.phase, 'busy');
    assert.match(status.summary, /still being held/);
    assert.deepEqual(fakes.calls, ['checkLectureship', 'report nothing-to-do']);
  });

  test('the flag claimed by another run first: nothing to do, and this run clears nothing of it', { timeout: 60_000 }, async () => {
    fakes = new Fakes();
    fakes.claimed = false;
    const status = (await (await start()).result()) as PreparationStatus;
    assert.equal(status.phase, 'busy');
    assert.equal(status.lessonId, undefined);
    assert.match(status.summary, /another run set the updating flag first/);
    assert.deepEqual(fakes.calls, ['checkLectureship', 'setUpdatingFlag', 'report nothing-to-do']);
  });

  test('abort while the lesson is held is passed on to holdLesson, which puts the satellites back', { timeout: 60_000 }, async () => {
    fakes = new Fakes();
    let open!: () => void;
    fakes.copyGate = new Promise((r) => (open = r));
    const handle = await start();
    for (let i = 0; i < 300; i++) {
      const s = await handle.query<PreparationStatus>('status');
      if (s.rollout) break;
      await sleep(100);
    }
    await sleep(500);
    await handle.signal('abort', 'test');
    open();
    const status = (await handle.result()) as PreparationStatus;
    assert.equal(status.phase, 'aborted');
    assert.equal(status.rollout?.phase, 'aborted');
    const rollout = (await client.workflow.getHandle(status.rollout!.workflowId).result()) as RolloutStatus;
    assert.equal(rollout.phase, 'aborted');
    assert.deepEqual([...fakes.served.values()], ['old', 'old'], 'both satellites serve the previous lesson');
    assert.ok(fakes.calls.includes('clearUpdatingFlag'), 'the flag is cleared');
    assert.ok(!fakes.calls.includes('discardLesson'), 'a filed lesson is kept');
    assert.ok(fakes.calls.includes(`recordLessonRun ${status.rollout!.workflowId}`), 'the rollout is recorded by id before it starts');
    await replayAndRecord(handle, 'prepareLesson.abort-while-held.json');
  });

  test(
    'a cancel of prepareLesson while the lesson is held: the rollout puts the satellites back, the run reports, then ends cancelled',
    { timeout: 60_000 },
    async () => {
      fakes = new Fakes();
      let open!: () => void;
      fakes.copyGate = new Promise((r) => (open = r));
      const handle = await start();
      const holding = await waitForStatus(handle, (s) => s.rollout !== undefined, 'holding the lesson');
      await sleep(500);
      await handle.cancel();
      open();
      const err = await handle.result().then(
        () => assert.fail('the run should end cancelled'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, `ended cancelled: ${String(err)}`);
      const rollout = await client.workflow.getHandle(holding.rollout!.workflowId).query<RolloutStatus>('status');
      assert.equal(rollout.phase, 'aborted');
      assert.deepEqual([...fakes.served.values()], ['old', 'old'], 'both satellites serve the previous lesson');
      assert.ok(fakes.calls.includes('clearUpdatingFlag'), 'the flag is cleared');
      assert.equal(fakes.calls.filter((c) => c.startsWith('report')).at(-1), 'report aborted', fakes.calls.join(' | '));
      await replayAndRecord(handle, 'prepareLesson.cancel.json');
    },
  );
});
