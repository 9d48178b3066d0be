/**
 * Temporal Schedules from the operator's side, on a real cluster (Apache satellites
 * behind HAProxy, rsync, PostgreSQL, the Temporal server), each command its own process:
 * a schedule rings every few seconds; with an empty inbox prepareLesson does nothing;
 * with new subject matter it holds a lesson, and rings while it runs do nothing; pause,
 * unpause, trigger, delete; bad arguments get one line and exit 2.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import type { BellResult } from '../src/shared/schedule';
import type { PreparationStatus } from '../src/shared/preparation';
import { replayAndRecord } from './helpers/histories';
import { drop, preparationTestBed, servedVersions, smallSample } from './helpers/preparation';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The bells a schedule rang, oldest first, with what each answered. */
async function bells(client: Client, cluster: string): Promise<{ workflowId: string; status: string; result?: BellResult }[]> {
  const found: { workflowId: string; status: string; startTime: Date }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowType = 'ringSchoolBell' AND LessonplanCluster = '${cluster}'` })) {
    found.push({ workflowId: w.workflowId, status: w.status.name, startTime: w.startTime });
  }
  found.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  return Promise.all(
    found.map(async (b) => ({
      ...b,
      result: b.status === 'COMPLETED' ? ((await client.workflow.getHandle(b.workflowId).result()) as BellResult) : undefined,
    })),
  );
}

describe('lessonplan schedule: Temporal Schedules start prepareLesson', async () => {
  const { config, configFile, client, ops } = await preparationTestBed('schedule');
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });
  const scheduleId = `prepare-lesson-${config.reference.name}`;
  const prepareId = `prepare-lesson/${config.reference.name}`;

  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 120_000): Promise<T> => {
    const end = Date.now() + deadlineMs;
    while (Date.now() < end) {
      const found = await probe().catch(() => undefined);
      if (found !== undefined) return found;
      await sleep(300);
    }
    assert.fail(`${what}: not within ${deadlineMs / 1000} s`);
  };

  test('bad arguments: one clear line and exit 2', async () => {
    const badEvery = await lessonplan('schedule', 'create', '--every', 'often');
    assert.equal(badEvery.exitCode, 2);
    assert.equal(badEvery.stderr.trim(), 'error: --every: expected a duration such as "30s", "5m" or "1h", got "often"');
    const badWindow = await lessonplan('schedule', 'create', '--window', 'Mon 25:00-02:00');
    assert.equal(badWindow.exitCode, 2, badWindow.stderr);
    assert.match(badWindow.stderr.trim(), /^error: --window: .*25/);
    assert.equal(badWindow.stderr.trim().split('\n').length, 1);
    const unknown = await lessonplan('schedule', 'pause', 'no-such-schedule');
    assert.equal(unknown.exitCode, 2);
    assert.equal(unknown.stderr.trim(), 'error: no schedule named no-such-schedule; lessonplan schedule list shows them');
    const none = await lessonplan('schedule', 'list');
    assert.equal(none.exitCode, 0);
    assert.match(none.stdout, /no schedules/);
  });

  test(
    'every few seconds: nothing to do on an empty inbox; new subject matter is held as a lesson; rings meanwhile do nothing',
    { timeout: 300_000 },
    async () => {
      const created = await lessonplan('schedule', 'create', '--every', '4s', '--window', 'daily 00:00-24:00');
      assert.equal(created.exitCode, 0, created.stderr);
      assert.match(created.stdout, new RegExp(`^created ${scheduleId}: every 4s`));
      assert.match(created.stdout, /maintenance window: daily 00:00-24:00/);
      const again = await lessonplan('schedule', 'create', '--every', '4s');
      assert.equal(again.exitCode, 2, 'a second create of the same id is refused');
      assert.match(again.stderr, /exists already; give --replace/);

      // An empty inbox: the scheduled run finds nothing and ends, under its fixed workflow id.
      const idle = await waitFor('a scheduled run with nothing to do', async () => {
        const run = await client.workflow.getHandle(prepareId).describe();
        if (run.status.name !== 'COMPLETED') return undefined;
        return (await client.workflow.getHandle(prepareId).result()) as PreparationStatus;
      });
      assert.equal(idle.phase, 'nothing-to-do');

      // New subject matter: the next ring starts a run that holds a lesson. Rings go on
      // every 4 s, so a fresh run takes the fixed id seconds after the lesson ends: look
      // for the run that held it among the runs under that id, not at the latest one.
      const dropped = new Date();
      await drop(ops, smallSample(config, 60, 20));
      const { runId, status: done } = await waitFor(
        'a scheduled lesson held on every satellite',
        async () => {
          // From a little before the drop: a run that started just before it may still take it.
          const since = new Date(dropped.getTime() - 10_000).toISOString();
          for await (const run of client.workflow.list({
            query: `WorkflowId = '${prepareId}' AND StartTime > '${since}' AND ExecutionStatus = 'Completed'`,
          })) {
            const status = (await client.workflow.getHandle(prepareId, run.runId).result()) as PreparationStatus;
            if (status.phase === 'done') return { runId: run.runId, status };
          }
          return undefined;
        },
        240_000,
      );
      assert.ok(done.lessonId);
      await replayAndRecord(client.workflow.getHandle(prepareId, runId), 'prepareLesson.scheduled.json');
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => done.lessonId),
      );

      const rung = await bells(client, config.cluster);
      assert.ok(
        rung.some((b) => b.result?.started === false && /still running: nothing to do/.test(b.result.reason)),
        `a ring during the lesson did nothing: ${JSON.stringify(rung.map((b) => b.result))}`,
      );
      assert.ok(rung.filter((b) => b.result?.started).length >= 2, 'rings started the idle run and the lesson');
      await replayAndRecord(client.workflow.getHandle(rung.find((b) => b.result?.started)!.workflowId), 'ringSchoolBell.json');
      await replayAndRecord(client.workflow.getHandle(rung.find((b) => b.result?.started === false)!.workflowId), 'ringSchoolBell.busy.json');

      type Row = { scheduleId: string; window: string; paused: boolean; lastRun: unknown };
      const rows = await waitFor('the schedule in the list', async () => {
        const listed = JSON.parse((await lessonplan('--json', 'schedule', 'list')).stdout) as Row[];
        return listed.length > 0 ? listed : undefined;
      });
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.scheduleId, scheduleId);
      assert.equal(rows[0]!.window, 'daily 00:00-24:00');
      assert.ok(rows[0]!.lastRun);
    },
  );

  test('pause stops the rings, unpause and trigger bring them back, delete removes the schedule', { timeout: 120_000 }, async () => {
    const paused = await lessonplan('schedule', 'pause', '--note', 'index rebuild tonight');
    assert.equal(paused.exitCode, 0, paused.stderr);
    const list = await waitFor('the pause in the list', async () => {
      const listed = await lessonplan('schedule', 'list');
      return /PAUSED/.test(listed.stdout) ? listed : undefined;
    });
    assert.match(list.stdout, /every 4s \(PAUSED\)/);
    assert.match(list.stdout, /note: index rebuild tonight/);
    // A ring may have been on its way when the pause came: count from a moment later.
    await sleep(2_000);
    const before = (await bells(client, config.cluster)).length;
    await sleep(9_000);
    assert.equal((await bells(client, config.cluster)).length, before, 'no ring while paused');

    assert.equal((await lessonplan('schedule', 'unpause')).exitCode, 0);
    assert.equal((await lessonplan('schedule', 'pause')).exitCode, 0);
    const triggered = await lessonplan('schedule', 'trigger');
    assert.equal(triggered.exitCode, 0, triggered.stderr);
    await waitFor('the triggered ring', async () => ((await bells(client, config.cluster)).length > before ? true : undefined), 30_000);

    const deleted = await lessonplan('schedule', 'delete');
    assert.equal(deleted.exitCode, 0, deleted.stderr);
    // Schedule lists come from visibility, which follows a moment later.
    await waitFor('the list without it', async () => (/no schedules/.test((await lessonplan('schedule', 'list')).stdout) ? true : undefined), 30_000);
    const gone = await lessonplan('schedule', 'trigger');
    assert.equal(gone.exitCode, 2);
    assert.match(gone.stderr, /no schedule named prepare-lesson-/);
  });
});
