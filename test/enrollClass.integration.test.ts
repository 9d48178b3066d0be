/**
 * The first real workflow on the real stack: enrollClass runs on the Temporal dev
 * server, its activities on the reference worker read and write the operational
 * database on the embedded PostgreSQL.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { execa } from 'execa';
import type { ClusterConfig } from '../src/config/schema';
import { enrollClass } from '../src/operator/enroll';
import { ORCHESTRATION_TASK_QUEUE } from '../src/shared/names';
import { temporalCliPath } from '../src/stack/toolPaths';
import { WORKFLOWS_PATH } from '../src/workers/roles';
import { freshDatabase, testStack } from './helpers/stack';
import { clientForTest, runWorkersForTest } from './helpers/workers';

describe('enrollClass on the real Temporal server and PostgreSQL', async () => {
  const base = await testStack();
  const { spec, db } = await freshDatabase(base, 'enroll');
  const config: ClusterConfig = { ...base, operationalDatabase: spec, reference: { ...base.reference, name: 'teacher-enroll' } };
  await runWorkersForTest(config, [{ role: 'orchestration' }, { role: 'reference' }]);
  const { client, endpoint } = await clientForTest(config);

  test('records the class list in the machine registry and reports to the task monitor', async () => {
    const { workflowId, runId, result } = await enrollClass(client, config);
    assert.equal(workflowId, 'enroll-class/teacher-enroll');
    assert.deepEqual(result.enrolled.sort(), ['boy-1', 'boy-2', 'girl-1', 'girl-2', 'master', 'slave-1', 'slave-2', 'teacher-enroll']);

    const { rows } = await db.query<{ name: string; role: string; group_name: string | null }>(
      "SELECT name, role, group_name FROM machines WHERE role IN ('reference', 'satellite') ORDER BY name",
    );
    assert.deepEqual(rows, [
      { name: 'boy-1', role: 'satellite', group_name: 'boys' },
      { name: 'boy-2', role: 'satellite', group_name: 'boys' },
      { name: 'girl-1', role: 'satellite', group_name: 'girls' },
      { name: 'girl-2', role: 'satellite', group_name: 'girls' },
      { name: 'teacher-enroll', role: 'reference', group_name: null },
    ]);
    const reports = await db.query<{ task: string; status: string; summary: string }>(
      'SELECT task, status, summary FROM reports WHERE run_key = $1',
      [`${workflowId}/${runId}`],
    );
    assert.equal(reports.rows.length, 1);
    assert.equal(reports.rows[0]!.status, 'ok');
    assert.match(reports.rows[0]!.summary, /8 enrolled, 0 updated, 0 retired/);

    // The history replays against the current workflow code; keep it as a fixture when asked.
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, workflowId);
    if (process.env.LESSONPLAN_RECORD_HISTORIES) {
      writeFileSync(path.join(import.meta.dirname, 'histories/enrollClass.json'), historyToJSON(history));
    }
  });

  test('a changed roster updates moved machines and retires the ones no longer listed', async () => {
    const changed: ClusterConfig = {
      ...config,
      satellites: config.satellites.filter((s) => s.name !== 'girl-2').map((s) => (s.name === 'boy-2' ? { ...s, group: 'girls' } : s)),
    };
    const { result } = await enrollClass(client, changed);
    assert.deepEqual(result.retired, ['girl-2']);
    assert.deepEqual(result.updated, ['boy-2']);
    assert.deepEqual(result.enrolled, []);
    const { rows } = await db.query(
      "SELECT name FROM machines WHERE role = 'satellite' AND retired_at IS NULL AND group_name = 'girls' ORDER BY name",
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      ['boy-2', 'girl-1'],
    );
    // Enrolling the same roster again changes nothing.
    const again = await enrollClass(client, changed);
    assert.equal(again.result.unchanged.length, 7);
  });

  test('a roster without a reference machine fails at once, without retries', async () => {
    const handle = await client.workflow.start('enrollClass', {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: 'enroll-class/no-reference',
      args: [{ cluster: 'test', machines: [{ name: 's1', role: 'satellite', host: 'h', group: 'boys' }] }],
      workflowExecutionTimeout: '1m',
    });
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ActivityFailure);
      assert.ok(err.cause.cause instanceof ApplicationFailure);
      assert.equal(err.cause.cause.type, 'InvalidRoster');
      assert.match(err.cause.cause.message, /names 0 reference machines; exactly one is required/);
      return true;
    });
    const history = await handle.fetchHistory();
    const attempts = history.events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.deepEqual(attempts, [1]);
  });

  test('the installed Temporal CLI lists the workflow, and the Temporal UI answers', async () => {
    const listed = await execa(temporalCliPath(), [
      'workflow',
      'list',
      '--address',
      endpoint.address,
      '--namespace',
      endpoint.namespace,
      '--output',
      'json',
    ]);
    const ids = (JSON.parse(listed.stdout) as { execution: { workflowId: string } }[]).map((w) => w.execution.workflowId);
    assert.ok(ids.includes('enroll-class/teacher-enroll'), `workflow list: ${ids.join(', ')}`);
    assert.ok(endpoint.uiUrl, 'the embedded stack knows its UI address');
    const ui = await fetch(endpoint.uiUrl);
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /<html/i);
  });
});
