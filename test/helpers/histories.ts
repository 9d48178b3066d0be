/** Recorded histories: replay a finished workflow's history now, and keep it as a fixture when asked. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../../src/workers/roles';

/** Replays the workflow's history against the current code; writes test/histories/<fixture> when LESSONPLAN_RECORD_HISTORIES is set. */
export async function replayAndRecord(handle: WorkflowHandle, fixture: string): Promise<void> {
  const history = await handle.fetchHistory();
  await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, handle.workflowId);
  if (process.env.LESSONPLAN_RECORD_HISTORIES) writeFileSync(path.join(import.meta.dirname, '..', 'histories', fixture), historyToJSON(history));
}
