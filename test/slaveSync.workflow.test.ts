/**
 * slaveSync's logic with stubbed slave activities, on the real Temporal server: the
 * master unreachable and back, a halt that waits for resume, pause and resume, and
 * continue-as-new carrying the counters over. The real parts are exercised by the
 * slaveSync integration tests.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { ORCHESTRATION_TASK_QUEUE, slaveTaskQueue } from '../src/shared/names';
import type { FollowMasterInput, SlaveSyncInput, SlaveSyncResult, SlaveSyncStatus } from '../src/shared/slaveSync';
import { waitForStatus } from './helpers/replication';
import { onTeardown, testStack } from './helpers/stack';
import { clientForTest, runStubbedWorkers } from './helpers/workers';

const SLAVE = 'stub-slave';

/** A slave in memory: its mark, the master's seq, and what the next pass should do. */
class FakeSlave {
  hwm = 0;
  masterSeq = 0;
  passes = 0;
  /** When set, a save's catch-up meets a block under a new model and evolves the schema. */
  saveEvolves = false;
  /** The mark as the running follow last applied it. */
  followed = 0;
  /** When set, every pass fails with this kind. */
  failWith: { kind: string; message: string; nonRetryable: boolean } | undefined;

  activities() {
    return {
      // Like the real one: follows until the slave's state differs from what the workflow shows, or it is time to report.
      followMaster: async (input: FollowMasterInput): Promise<SlaveSyncResult> => {
        this.passes++;
        if (this.failWith) {
          const { kind, message, nonRetryable } = this.failWith;
          throw nonRetryable ? ApplicationFailure.nonRetryable(message, kind) : ApplicationFailure.retryable(message, kind);
        }
        const context = Context.current();
        const started = Date.now();
        let applied = 0;
        for (;;) {
          applied += this.masterSeq - this.hwm;
          this.hwm = this.masterSeq;
          this.followed = this.hwm;
          if (!input.caughtUp || Date.now() - started >= input.reportEveryMs) {
            return { highWaterMark: this.hwm, applied, masterSeq: this.masterSeq, lagBlocks: 0, lagSeconds: 0, modelChecksum: 'm', evolved: [] };
          }
          context.heartbeat({ highWaterMark: this.hwm, applied });
          await Promise.race([context.cancelled, new Promise((r) => setTimeout(r, 20))]);
        }
      },
      // Like the real one: the save's own catch-up applies what waits up to its block, evolving on the way when told to.
      routeSaveToMaster: async () => {
        this.masterSeq++;
        const applied = this.masterSeq - this.hwm;
        this.hwm = this.masterSeq;
        const evolved = this.saveEvolves ? [{ from: 'm', to: 'm2', changes: ['add class loan'] }] : [];
        return { seq: this.masterSeq, duplicate: false, highWaterMark: this.hwm, applied, evolved };
      },
    };
  }
}

describe('slaveSync logic (stubbed activities, real Temporal server)', async () => {
  const config = await testStack();
  const { client } = await clientForTest(config);
  let slave = new FakeSlave();
  await runStubbedWorkers(config, { [slaveTaskQueue(SLAVE)]: () => slave.activities() });

  let counter = 0;
  let previous: WorkflowHandle | undefined;
  const start = async (overrides: Partial<SlaveSyncInput> = {}): Promise<WorkflowHandle> => {
    // One workflow at a time on the stub queue: the previous test's must not take this one's passes.
    await previous?.terminate('the next test starts').catch(() => undefined);
    slave = new FakeSlave();
    const input: SlaveSyncInput = { slave: SLAVE, pollIntervalMs: 50, saveTimeoutMs: 5_000, reportEveryMs: 200, ...overrides };
    const handle = await client.workflow.start('slaveSync', {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: `slave-sync/${SLAVE}-${++counter}-${Date.now()}`,
      args: [input],
    });
    onTeardown(() => handle.terminate().catch(() => undefined));
    previous = handle;
    return handle;
  };

  test('the master unreachable: status says since when, and keeps that time across attempts; back: cleared', { timeout: 60_000 }, async () => {
    const handle = await start();
    await waitForStatus(handle, (s) => s.state === 'caught-up');
    slave.failWith = { kind: 'MasterUnreachable', message: 'the master at http://m is unreachable: ECONNREFUSED', nonRetryable: false };
    const first = await waitForStatus(handle, (s) => s.state === 'master-unreachable');
    assert.match(first.lastError!, /ECONNREFUSED/);
    const passes = slave.passes;
    await waitForStatus(handle, () => slave.passes >= passes + 2);
    const later: SlaveSyncStatus = await handle.query('status');
    assert.equal(later.masterUnreachableSince, first.masterUnreachableSince, 'the first failure is when it became unreachable');
    slave.failWith = undefined;
    slave.masterSeq = 7;
    const back = await waitForStatus(handle, (s) => s.highWaterMark === 7);
    assert.equal(back.masterUnreachableSince, null);
    assert.equal(back.lastError, null);
    assert.equal(back.state, 'caught-up');
  });

  test('after a save, an unreachable master is still tried again with a growing pause, not at once', { timeout: 60_000 }, async () => {
    const handle = await start();
    await waitForStatus(handle, (s) => s.state === 'caught-up');
    await handle.executeUpdate('save', { args: [{ idempotencyKey: 'k', changes: [{ class: 'book', op: 'delete', key: { id: 1 } }] }] });
    slave.failWith = { kind: 'MasterUnreachable', message: 'the master at http://m is unreachable: ECONNREFUSED', nonRetryable: false };
    await waitForStatus(handle, (s) => s.state === 'master-unreachable');
    const passes = slave.passes;
    await new Promise((r) => setTimeout(r, 3_000));
    // Pauses of 50, 100, 200, 400, 800 and 1,600 ms fit in 3 s: six tries at most.
    assert.ok(slave.passes - passes <= 6, `${slave.passes - passes} tries in 3 s`);
  });

  test('a failure waiting cannot fix halts: no more passes, saves refused, until resume', { timeout: 60_000 }, async () => {
    const handle = await start();
    slave.failWith = { kind: 'BehindRetention', message: 'rebuild this slave from a recent master backup', nonRetryable: true };
    const halted = await waitForStatus(handle, (s) => s.state === 'halted');
    assert.equal(halted.halt?.kind, 'BehindRetention');
    assert.match(halted.halt!.resumeWith, new RegExp(`--workflow-id ${handle.workflowId} --name resume`));
    const passes = slave.passes;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(slave.passes, passes, 'a halted slave does not try again by itself');
    await assert.rejects(
      handle.executeUpdate('save', { args: [{ idempotencyKey: 'k', changes: [{ class: 'book', op: 'delete', key: { id: 1 } }] }] }),
      (err: Error) => /is halted/.test((err.cause as Error).message),
    );
    slave.failWith = undefined;
    slave.masterSeq = 3;
    await handle.signal('resume');
    const resumed = await waitForStatus(handle, (s) => s.highWaterMark === 3);
    assert.equal(resumed.halt, null);
  });

  test('a master that fails the same way pass after pass halts the slave, saying why; resume tries again', { timeout: 90_000 }, async () => {
    const handle = await start();
    await waitForStatus(handle, (s) => s.state === 'caught-up');
    slave.failWith = {
      kind: 'MasterFailed',
      message: 'the master at http://m failed: it answered HTTP 500 (Cannot create a string longer than 0x1fffffe8 characters)',
      nonRetryable: false,
    };
    const halted = await waitForStatus(handle, (s) => s.state === 'halted', 60_000);
    assert.equal(halted.halt?.kind, 'MasterFailing');
    assert.match(halted.halt!.reason, /failed the same way \d+ times in a row: .*HTTP 500 \(Cannot create a string/);
    assert.equal(halted.masterUnreachableSince, null, 'an answer, even a failing one, is not an unreachable master');
    slave.failWith = undefined;
    slave.masterSeq = 4;
    await handle.signal('resume');
    const resumed = await waitForStatus(handle, (s) => s.highWaterMark === 4);
    assert.equal(resumed.halt, null);
  });

  test('pause stops the passes and refuses saves; resume goes on', { timeout: 60_000 }, async () => {
    const handle = await start();
    await waitForStatus(handle, (s) => s.state === 'caught-up');
    await handle.signal('pause');
    await waitForStatus(handle, (s) => s.state === 'paused');
    const passes = slave.passes;
    slave.masterSeq = 5;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(slave.passes, passes);
    await assert.rejects(
      handle.executeUpdate('save', { args: [{ idempotencyKey: 'k', changes: [{ class: 'book', op: 'delete', key: { id: 1 } }] }] }),
      (err: Error) => /is paused; saves through it are refused/.test((err.cause as Error).message),
    );
    await handle.signal('resume');
    await waitForStatus(handle, (s) => s.highWaterMark === 5 && !s.paused);
  });

  test("a save's own catch-up counts in status: the blocks it applied and the schema it evolved", { timeout: 60_000 }, async () => {
    const handle = await start();
    await waitForStatus(handle, (s) => s.state === 'caught-up');
    slave.saveEvolves = true;
    const saved = await handle.executeUpdate<{ seq: number }, [unknown]>('save', {
      args: [{ idempotencyKey: 'k', changes: [{ class: 'loan', op: 'upsert', values: { book_id: 1 } }] }],
    });
    assert.equal(saved.seq, 1);
    // No pass applied anything: the save's catch-up did it all.
    const status: SlaveSyncStatus = await handle.query('status');
    assert.equal(status.appliedBlocks, 1);
    assert.equal(status.evolvedModels, 1);
  });

  test('continue-as-new after passesPerRun passes: the next run keeps the counters and the mark', { timeout: 60_000 }, async () => {
    const handle = await start({ passesPerRun: 3 });
    const { runId: firstRun } = await handle.describe();
    slave.masterSeq = 4;
    await waitForStatus(handle, (s) => s.appliedBlocks === 4);
    // Save through it, so an update runs too; then wait for a new run.
    const saved = await handle.executeUpdate<{ seq: number }, [unknown]>('save', {
      args: [{ idempotencyKey: 'k', changes: [{ class: 'book', op: 'delete', key: { id: 1 } }] }],
    });
    assert.equal(saved.seq, 5);
    for (let i = 0; (await client.workflow.getHandle(handle.workflowId).describe()).runId === firstRun; i++) {
      assert.ok(i < 100, 'no continue-as-new after 3 passes');
      await new Promise((r) => setTimeout(r, 100));
    }
    const latest = client.workflow.getHandle(handle.workflowId);
    await latest.signal('pause');
    await waitForStatus(latest, (s) => s.state === 'paused');
    slave.masterSeq = 9;
    const status: SlaveSyncStatus = await latest.query('status');
    assert.ok(status.appliedBlocks >= 4, `applied blocks carried over: ${status.appliedBlocks}`);
    assert.equal(status.highWaterMark, 5);
    await latest.signal('resume');
    const after = await waitForStatus(latest, (s) => s.highWaterMark === 9);
    assert.ok(after.appliedBlocks >= 8);
  });

  test(
    'one follow applies block after block without a pass of the workflow for each; its heartbeat shows the mark',
    { timeout: 60_000 },
    async () => {
      const handle = await start({ reportEveryMs: 60_000 });
      await waitForStatus(handle, (s) => s.state === 'caught-up');
      const passes = slave.passes;
      for (let seq = 1; seq <= 5; seq++) {
        slave.masterSeq = seq;
        while (slave.followed < seq) await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(slave.passes, passes, 'the running follow applied all five');
      const recorded: SlaveSyncStatus = await handle.query('status');
      assert.equal(recorded.highWaterMark, 0, 'the workflow records them only when the follow reports');
      // What operators read: the follow's heartbeat, kept by Temporal with the pending activity.
      await waitForStatus(handle, (s) => s.highWaterMark === 5 && s.state === 'caught-up');
      // A pause does not wait for the report: it cancels the follow.
      await handle.signal('pause');
      await waitForStatus(handle, (s) => s.state === 'paused', 20_000);
    },
  );
});
