/**
 * Alerts against a local HTTP receiver: the notifier (webhook with a token, a command),
 * the task monitor's alerts for halts and aborts (once per event, on a real operational
 * database, again after a failed delivery), and slaveSync's alerts for a halt, a master
 * unreachable past the threshold and lag past the threshold, one per episode (workflow
 * logic on the real Temporal server with the real notifier; the sync pass is stubbed).
 * A rollout halting on a real cluster alerts in firstHour.integration.test.ts, a real
 * master going away in slaveSync.outage.integration.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { createAlertActivities } from '../src/activities/common/alerts';
import { createTaskMonitorActivities } from '../src/activities/reference/taskMonitor';
import { AlertDeliveryError, createNotifier, webhookLabel } from '../src/alerts/notifier';
import { migrateOperational } from '../src/db/migrate';
import type { Alert } from '../src/shared/alert';
import { ORCHESTRATION_TASK_QUEUE, slaveTaskQueue } from '../src/shared/names';
import type { Report } from '../src/shared/report';
import type { SlaveSyncInput, SlaveSyncResult } from '../src/shared/slaveSync';
import { createLogger } from '../src/logging';
import { freePort } from '../src/stack/ports';
import { installRuntime } from '../src/workers/runtime';
import { alertReceiver } from './helpers/alertReceiver';
import { waitForStatus } from './helpers/replication';
import { freshDatabase, onTeardown, testStack } from './helpers/stack';
import { clientForTest, runStubbedWorkers } from './helpers/workers';

const TOKEN_ENV = 'LESSONPLAN_TEST_ALERT_TOKEN';
const TOKEN = 'tok-3f9a-very-secret';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const anAlert = (key = 'k-1'): Alert => ({
  key,
  kind: 'rollout-halted',
  cluster: 'school',
  workflowId: 'hold-lesson/20261123-010203-abcdef',
  summary: 'school: lesson halted',
  reason: 'girl-1 failed the examination',
  resumeCommand: 'lessonplan lesson resume 20261123-010203-abcdef',
  at: new Date().toISOString(),
});

describe('alerts', async () => {
  // The workers of this file log through this logger: what they write is read back below.
  const logLines: string[] = [];
  const logger = createLogger('alerts-test', { level: 'info', destination: { write: (line) => logLines.push(line) } });
  installRuntime(logger);
  // Everything awaited is set up here, before the nested suites (which stay synchronous).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-alerts-'));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = await testStack();
  const { client } = await clientForTest(config);

  describe('the notifier', () => {
    const defaults = { timeout: 2_000, slaveUnreachableAfter: 1, lagAboveBlocks: 1, lagAboveSeconds: 1 };

    test('a webhook gets the alert as JSON with the token and the key; a command gets it on stdin', async () => {
      const receiver = await alertReceiver();
      const out = path.join(dir, 'paged.json');
      const notifier = createNotifier(
        {
          ...defaults,
          webhook: receiver.url,
          webhookTokenEnv: TOKEN_ENV,
          command: [process.execPath, '-e', `require('node:fs').writeFileSync(${JSON.stringify(out)}, require('node:fs').readFileSync(0))`],
        },
        { [TOKEN_ENV]: TOKEN },
      );
      await notifier.notify(anAlert());
      assert.equal(receiver.received.length, 1);
      const [got] = receiver.received;
      assert.equal(got!.headers.authorization, `Bearer ${TOKEN}`);
      assert.equal(got!.headers['idempotency-key'], 'k-1');
      assert.deepEqual(got!.alert, { ...anAlert(), at: got!.alert.at });
      assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), got!.alert, 'the command read the same JSON');
      assert.deepEqual(notifier.targets, [`webhook ${new URL(receiver.url).origin}/…`, `command ${process.execPath}`]);
    });

    test('a failed delivery says which target and why, without the token or the secret part of the URL', async () => {
      const receiver = await alertReceiver();
      receiver.answerWith(500);
      const failing = createNotifier(
        {
          ...defaults,
          webhook: receiver.url,
          webhookTokenEnv: TOKEN_ENV,
          command: [process.execPath, '-e', 'console.error("pager down"); process.exit(4)'],
        },
        { [TOKEN_ENV]: TOKEN },
      );
      const err = await failing.notify(anAlert()).then(
        () => assert.fail('delivered'),
        (e: AlertDeliveryError) => e,
      );
      assert.ok(err instanceof AlertDeliveryError && err.retryable);
      assert.match(err.message, new RegExp(`the alert webhook ${new URL(receiver.url).origin}/… answered 500`));
      assert.match(err.message, /the alert command .* failed \(exit 4\): pager down/);
      assert.doesNotMatch(err.message, new RegExp(`${TOKEN}|secret-path`));

      const closed = await freePort(); // nobody listens there
      const nobody = createNotifier({ ...defaults, webhook: `http://127.0.0.1:${closed}/hook` });
      await assert.rejects(
        nobody.notify(anAlert()),
        new RegExp(`the alert webhook http://127\\.0\\.0\\.1:${closed}/… could not be reached: ECONNREFUSED`),
      );

      const noToken = createNotifier({ ...defaults, webhook: receiver.url, webhookTokenEnv: TOKEN_ENV }, {});
      await assert.rejects(
        noToken.notify(anAlert()),
        (e: AlertDeliveryError) => !e.retryable && /LESSONPLAN_TEST_ALERT_TOKEN is not set/.test(e.message),
      );
      assert.equal(webhookLabel('https://hooks.example/'), 'https://hooks.example');
    });
  });

  const { db } = await freshDatabase(config, 'alerts');
  await migrateOperational(db);
  const monitorReceiver = await alertReceiver();

  describe('the task monitor alerts halts and aborts, once each', () => {
    const receiver = monitorReceiver;
    const notifier = createNotifier({ webhook: receiver.url, timeout: 2_000, slaveUnreachableAfter: 1, lagAboveBlocks: 1, lagAboveSeconds: 1 });
    const monitor = createTaskMonitorActivities(db, { cluster: 'school', notifier });
    const runId = '0196a2b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b';
    const report = (over: Partial<Report>): Report => ({
      runKey: `hold-lesson/L1/${runId}/halt-1`,
      task: 'holdLesson',
      status: 'halted',
      summary: 'lesson L1 halted in lesson and examination of group girls: girl-1 failed the examination: search index corrupt',
      log: [],
      details: { lessonId: 'L1', halted: { reason: 'girl-1 failed the examination: search index corrupt' } },
      startedAt: new Date().toISOString(),
      ...over,
    });

    test('a halted rollout: one alert with the reason and the resume command, even when the report is written again', async () => {
      await monitor.writeReport(report({}));
      await monitor.writeReport(report({})); // a retried activity writes the same report again
      await sleep(200);
      assert.equal(receiver.received.length, 1);
      const { alert } = receiver.received[0]!;
      assert.equal(alert.kind, 'rollout-halted');
      assert.equal(alert.workflowId, 'hold-lesson/L1');
      assert.equal(alert.reason, 'girl-1 failed the examination: search index corrupt');
      assert.equal(alert.resumeCommand, 'lessonplan lesson resume L1');
      assert.match(alert.summary, /^school: lesson L1 halted in lesson and examination of group girls/);
      // The second halt of the same run is another event.
      await monitor.writeReport(report({ runKey: `hold-lesson/L1/${runId}/halt-2` }));
      assert.equal(receiver.received.length, 2);
    });

    test('reports that need nobody do not alert; a run aborted while its rollout runs leaves the alert to the rollout', async () => {
      const before = receiver.received.length;
      await monitor.writeReport(report({ runKey: `hold-lesson/L2/${runId}`, status: 'ok', summary: 'served' }));
      await monitor.writeReport(
        report({ runKey: `prepare-lesson/teacher/${runId}`, task: 'prepareLesson', status: 'nothing-to-do', summary: 'idle' }),
      );
      await monitor.writeReport(
        report({
          runKey: `prepare-lesson/teacher/${runId}/x`,
          task: 'prepareLesson',
          status: 'aborted',
          details: { rollout: { workflowId: 'hold-lesson/L2' } },
        }),
      );
      assert.equal(receiver.received.length, before);
      await monitor.writeReport(
        report({
          runKey: `hold-lesson/L3/${runId}`,
          status: 'aborted',
          summary: 'lesson L3 aborted; 4 of 4 satellites serve their previous lesson',
          log: ['2026-11-23T01:00:00.000Z abort requested: the new data is wrong'],
          details: { lessonId: 'L3' },
        }),
      );
      const { alert } = receiver.received.at(-1)!;
      assert.equal(alert.kind, 'rollout-aborted');
      assert.equal(alert.reason, 'the new data is wrong');
      assert.equal(alert.resumeCommand, undefined, 'nothing to resume after an abort');
    });

    test('a delivery that fails fails the activity (Temporal retries it); the retry alerts once', async () => {
      const before = receiver.received.length;
      receiver.answerWith(503);
      const halted = report({
        runKey: `prepare-lesson/teacher/${runId}/halt-1`,
        task: 'prepareLesson',
        details: { halted: { reason: 'proof-read failed' } },
      });
      await assert.rejects(
        monitor.writeReport(halted),
        (err: ApplicationFailure) => err.type === 'AlertNotDelivered' && !err.nonRetryable && /answered 503/.test(err.message),
      );
      const { rows } = await db.query<{ alerted_at: Date | null; status: string }>('SELECT alerted_at, status FROM reports WHERE run_key = $1', [
        halted.runKey,
      ]);
      assert.deepEqual(rows, [{ alerted_at: null, status: 'halted' }], 'the report is kept, not yet alerted');
      receiver.answerWith(200);
      await monitor.writeReport(halted);
      await monitor.writeReport(halted);
      assert.equal(receiver.received.length, before + 1);
      const { alert } = receiver.received.at(-1)!;
      assert.equal(alert.kind, 'preparation-halted');
      assert.equal(alert.resumeCommand, 'lessonplan lesson resume');
    });
  });

  const SLAVE = 'alert-slave';
  /** slaveSync's alerts arrive here (the task monitor's at monitorReceiver). */
  const receiver = await alertReceiver();
  const notifier = createNotifier(
    { webhook: receiver.url, webhookTokenEnv: TOKEN_ENV, timeout: 2_000, slaveUnreachableAfter: 1, lagAboveBlocks: 1, lagAboveSeconds: 1 },
    { [TOKEN_ENV]: TOKEN },
  );
  /** What the next pass does: answer with this lag, or fail with this kind. */
  let pass: { lagBlocks: number } | { fail: string; nonRetryable: boolean } = { lagBlocks: 0 };
  let passes = 0;
  /** One pass: a follow of the master that reports after 20 ms. */
  const onePass = async (): Promise<SlaveSyncResult> => {
    passes++;
    await sleep(20);
    if ('fail' in pass) {
      const message = `${pass.fail} on purpose`;
      throw pass.nonRetryable ? ApplicationFailure.nonRetryable(message, pass.fail) : ApplicationFailure.retryable(message, pass.fail);
    }
    return {
      highWaterMark: 100,
      applied: 1,
      masterSeq: 100 + pass.lagBlocks,
      lagBlocks: pass.lagBlocks,
      lagSeconds: pass.lagBlocks > 0 ? 2 : 0,
      modelChecksum: 'm',
      evolved: [],
    };
  };
  await runStubbedWorkers(config, {
    [slaveTaskQueue(SLAVE)]: () => ({ ...createAlertActivities(notifier), followMaster: onePass }),
  });

  describe("slaveSync's alerts (stubbed sync pass, real notifier and Temporal server)", () => {
    let handle: WorkflowHandle;
    let firstRunId = '';
    const input: SlaveSyncInput = {
      slave: SLAVE,
      pollIntervalMs: 50,
      saveTimeoutMs: 5_000,
      passesPerRun: 15,
      alerts: { cluster: 'school', unreachableAfterMs: 800, lagAboveBlocks: 10, lagAboveSeconds: 60 },
    };
    const kinds = () => receiver.received.map((r) => r.alert.kind);
    const passesNow = async (n: number) => {
      const until = passes + n;
      while (passes < until) await sleep(20);
    };

    test(
      'unreachable past the threshold: one alert for the episode, another for the next; lag past it: one per episode',
      { timeout: 90_000 },
      async () => {
        const started = await client.workflow.start('slaveSync', {
          taskQueue: ORCHESTRATION_TASK_QUEUE,
          workflowId: `slave-sync/${SLAVE}-${Date.now()}`,
          args: [input],
        });
        handle = started;
        firstRunId = started.firstExecutionRunId;
        onTeardown(() => handle.terminate().catch(() => undefined));
        await waitForStatus(handle, (s) => s.state === 'caught-up');

        pass = { fail: 'MasterUnreachable', nonRetryable: false };
        const failingFrom = Date.now();
        await receiver.waitFor(1);
        assert.ok(Date.now() - failingFrom >= 700, 'not before the threshold');
        const { alert } = receiver.received[0]!;
        assert.equal(alert.kind, 'slave-master-unreachable');
        assert.match(alert.summary, /^school: slave alert-slave has not reached the master since .* reads on it go on, saves through it fail/);
        assert.match(alert.reason, /MasterUnreachable on purpose/);
        await sleep(2_000); // still unreachable, well past the threshold: no second alert
        assert.deepEqual(kinds(), ['slave-master-unreachable']);

        pass = { lagBlocks: 0 };
        await waitForStatus(handle, (s) => s.state === 'caught-up');
        pass = { fail: 'MasterUnreachable', nonRetryable: false };
        await receiver.waitFor(2);
        assert.notEqual(receiver.received[1]!.alert.key, receiver.received[0]!.alert.key, 'a new episode, a new key');

        pass = { lagBlocks: 50 };
        await receiver.waitFor(3);
        assert.equal(receiver.received[2]!.alert.kind, 'slave-lagging');
        assert.match(receiver.received[2]!.alert.summary, /slave alert-slave is 50 blocks and 2 s behind the master/);
        await passesNow(5);
        pass = { lagBlocks: 5 }; // under the threshold: the episode ends quietly
        await passesNow(3);
        assert.deepEqual(kinds(), ['slave-master-unreachable', 'slave-master-unreachable', 'slave-lagging']);
        pass = { lagBlocks: 20 };
        await receiver.waitFor(4);
        assert.equal(receiver.received[3]!.alert.kind, 'slave-lagging');
      },
    );

    test('a halt alerts with the command that resumes it; episodes carry over continue-as-new', { timeout: 60_000 }, async () => {
      const before = receiver.received.length;
      // The lag episode of the previous test still goes on; runs of 15 passes have continued as new meanwhile.
      const deadline = Date.now() + 30_000;
      while ((await handle.describe()).runId === firstRunId) {
        assert.ok(Date.now() < deadline, 'the workflow has continued as new');
        await sleep(200);
      }
      await passesNow(5);
      assert.equal(receiver.received.length, before, 'the lag episode was not alerted again by the new run');

      pass = { fail: 'BehindRetention', nonRetryable: true };
      const [, ...rest] = await receiver.waitFor(before + 1);
      const { alert } = rest.at(-1)!;
      assert.equal(alert.kind, 'slave-halted');
      assert.match(alert.summary, /slave alert-slave stopped syncing: BehindRetention/);
      assert.match(alert.resumeCommand!, new RegExp(`temporal workflow signal --workflow-id ${handle.workflowId} --name resume`));
    });
  });
  describe('the logs', () => {
    test('one JSON object a line, with the workflow and activity ids; the token and the secret URL path never appear', async () => {
      // The activity logs the delivery just after the receiver answered: give it a moment.
      for (let i = 0; i < 50 && !logLines.some((line) => line.includes('alert slave-halted delivered')); i++) await sleep(100);
      const entries = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const halted = entries.find((e) => /^halted: BehindRetention on purpose/.test(String(e.msg)));
      assert.ok(halted, 'the workflow logged its halt');
      assert.equal(halted.level, 40, 'at warn');
      assert.match(String(halted.workflowId), /^slave-sync\/alert-slave-/);
      assert.ok(halted.runId, 'with the run id');
      const unreachable = entries.find((e) => /^the master is unreachable/.test(String(e.msg)));
      assert.ok(unreachable, 'the workflow logged the outage');
      const delivered = entries.find((e) => e.msg === 'alert slave-halted delivered');
      assert.ok(delivered, 'the activity logged the delivery');
      assert.equal(delivered.activityType, 'sendAlert');
      assert.ok(delivered.activityId, 'with the activity id');
      assert.equal(delivered.taskToken, '[redacted]', 'the task token completes the activity: not for logs');
      assert.match(String(delivered.workflowId), /^slave-sync\/alert-slave-/);
      assert.deepEqual(delivered.targets, [`webhook ${new URL(receiver.url).origin}/…`]);
      for (const line of logLines) {
        assert.ok(!line.includes(TOKEN), `the token leaked: ${line}`);
        assert.ok(!line.includes('secret-path-123'), `the webhook's secret path leaked: ${line}`);
      }
      // Fields that hold secrets are redacted wherever they sit.
      logger.info({ password: 'pw-1', db: { password: 'pw-2' }, headers: { authorization: 'Bearer pw-3' }, token: 'pw-4' }, 'connecting');
      const last = logLines.at(-1)!;
      assert.doesNotMatch(last, /pw-\d/);
      assert.match(last, /\[redacted\]/);
    });
  });
});
