/**
 * The human summary of a run, kept in its memo so that the Temporal UI shows it on the
 * workflow's page and in its list. Each change is a history event, so an unchanged
 * summary is not written again. Runs recorded before summaries existed replay without
 * them (the patch marker).
 */
import { patched, upsertMemo } from '@temporalio/workflow';

export function memoWriter(): (summary: string) => void {
  let last: string | undefined;
  return (summary) => {
    if (summary === last || !patched('operator-memo')) return;
    last = summary;
    upsertMemo({ summary });
  };
}
