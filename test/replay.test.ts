/**
 * Replays recorded histories of every workflow against the current workflow code. A
 * change that would break running workflows (a reordered or removed command without
 * `patched`) fails here. Record new ones with LESSONPLAN_RECORD_HISTORIES=1 npm test.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../src/workers/roles';
import * as workflows from '../src/workflows';

const dir = path.join(import.meta.dirname, 'histories');
const recorded = readdirSync(dir).filter((f) => f.endsWith('.json'));

test('every workflow has at least one recorded history', () => {
  const covered = new Set(recorded.map((f) => f.replace(/(\..*)?\.json$/, '')));
  for (const name of Object.keys(workflows)) assert.ok(covered.has(name), `no recorded history for workflow ${name} in test/histories`);
});

for (const file of recorded) {
  test(`replays ${file}`, async () => {
    const history = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, file);
  });
}
