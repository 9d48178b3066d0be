/**
 * prepareLesson: the teacher prepares a lesson and holds it (seed: the controller of the
 * reference machine). The story reads top to bottom in `prepareLesson` below, one step
 * a line; each step is a small function further down that says which real action it is.
 *
 * A failing step halts: the task monitor gets a report and the run waits, with no
 * timeout, for `resume` (run the step again, after the operator's fix) or `abort`
 * (stop; nothing reaches the satellites that was not filed and held). The "updating"
 * flag is unset however the run ends, except when it is terminated from outside; the
 * next run notices such a stale flag and takes it over.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  log as workflowLog,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ReferenceActivities } from '../activities/reference';
import type { FiledPreparation, PreparationPhase, PreparationStatus, PrepareLessonInput, SubjectProgress } from '../shared/preparation';
import type { SearchProbe, TestQuery } from '../shared/lesson';
import { REFERENCE_TASK_QUEUE, searchAttributes, workflowIds } from '../shared/names';
import type { Report } from '../shared/report';
import { operatorMessage } from './failures';
import { Aborted, beyondCancellation, cancellationOf, OperatorDecisions } from './halts';
import { HEARTBEAT_TIMEOUT } from '../shared/heartbeats';
import type { RolloutStatus } from '../shared/rollout';
import { memoWriter } from './memo';
import { lessonIdFor } from '../shared/lessonId';
import { summarizePreparation } from '../shared/summaries';
import type { holdLesson as HoldLessonWorkflow } from './holdLesson';

export const preparationStatusQuery = defineQuery<PreparationStatus>('status');
export const resumePreparationSignal = defineSignal('resume');
export const abortPreparationSignal = defineSignal<[reason?: string]>('abort');

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } as const;
/** Errors that retrying cannot fix: straight to the operator. */
const nonRetryableErrorTypes = ['NotTheReference', 'LessonChangedAfterFiling'];

const quick = proxyActivities<ReferenceActivities>({
  taskQueue: REFERENCE_TASK_QUEUE,
  startToCloseTimeout: '1m',
  // The reference worker may be gone; then the step halts instead of waiting forever.
  scheduleToCloseTimeout: '5m',
  retry: { ...retry, maximumAttempts: 5, nonRetryableErrorTypes },
});
const long = proxyActivities<ReferenceActivities>({
  taskQueue: REFERENCE_TASK_QUEUE,
  startToCloseTimeout: '1h',
  scheduleToCloseTimeout: '2h',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { ...retry, maximumAttempts: 3, nonRetryableErrorTypes },
});

/** Commands of the cluster's own: each stops at its own timeout (at most a day); this only bounds a worker that hangs. */
const commands = proxyActivities<ReferenceActivities>({
  taskQueue: REFERENCE_TASK_QUEUE,
  startToCloseTimeout: '25h',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { ...retry, maximumAttempts: 3, nonRetryableErrorTypes },
});

/** This host is not the reference: the run fails (nothing to resume; fix the registry or the config). */
class NotTheReference extends Error {}

export async function prepareLesson(input: PrepareLessonInput): Promise<PreparationStatus> {
  const { workflowId, runId } = workflowInfo();
  const run = { workflowId, runId };
  const startedAt = new Date();
  const lessonId = lessonIdFor(startedAt, runId);
  const log: string[] = [];
  /** A line for the task monitor's report, and for the worker's log (with the workflow's ids; not repeated on replay). */
  const note = (line: string, level: 'info' | 'warn' = 'info') => {
    log.push(`${new Date().toISOString()} ${line}`);
    workflowLog[level](line);
  };
  const status: PreparationStatus = { reference: input.reference, phase: 'checking-lectureship', halted: null, subjects: [], summary: 'starting' };
  const decisions = new OperatorDecisions<NonNullable<PreparationStatus['halted']>>();
  let flagSet = false;
  /** The run id of an ended run whose flag may be taken over. */
  let takeOver: string | undefined;
  let filed: FiledPreparation | undefined;
  const testQueries: TestQuery[] = [];
  let searchProbe: SearchProbe | undefined;
  /** Subjects of the cluster's own (their steps are its commands), and the prepare commands each check named. */
  const own = new Set(input.ownSubjects ?? []);
  const prepareCommands = new Map<string, string[]>();

  // Descriptions are what the Temporal UI shows beside each name in its signal and query lists.
  setHandler(preparationStatusQuery, () => status, { description: 'Where the teacher stands: phase, subjects, a halt, the rollout' });
  setHandler(
    resumePreparationSignal,
    () => {
      decisions.resume();
    },
    { description: 'After the fix: run the halted step again and go on' },
  );
  setHandler(
    abortPreparationSignal,
    (reason) => {
      note(`abort requested${reason ? `: ${reason}` : ''}`);
      decisions.abort(reason || 'aborted by the operator');
    },
    { description: 'Give this lesson up (its rollout too, if one runs); optional input: the reason' },
  );
  upsertSearchAttributes([{ key: searchAttributes.cluster, value: input.cluster }]);

  const showSummary = memoWriter();
  const setPhase = (phase: PreparationPhase) => {
    status.phase = phase;
    upsertSearchAttributes([
      { key: searchAttributes.phase, value: phase },
      { key: searchAttributes.halted, value: phase === 'halted' },
    ]);
    showSummary(summarizePreparation(status));
  };

  // ---- the story (the seed's controller) ----------------------------------------------
  let outcome: Report['status'] = 'ok';
  /** The cancellation to end the run with, once everything is tidied up. */
  let cancelled: unknown;
  try {
    await checkLectureship();
    if ((await checkIfStillHoldingLesson()) || !(await prepareForLesson())) {
      outcome = 'nothing-to-do';
    } else {
      for (const subject of input.subjects) {
        if (await checkNewSubjectMatter(subject)) {
          await prepareSubjectMatter(subject);
          await proofReadPreparation(subject);
        }
      }
      if (newLessonNeeded()) {
        await filePreparation();
        await callScholars();
        await handOutBooks();
        outcome = await holdTheLesson();
      } else {
        outcome = 'nothing-to-do';
        status.summary = 'no new subject matter: no lesson this time';
      }
    }
  } catch (err) {
    // An abort, or a cancellation, which means the same: give the lesson up, report, and only then end.
    const stop = cancellationOf(err);
    if (stop) {
      outcome = 'aborted';
      cancelled = stop.rethrow;
      if (cancelled) note(`${stop.aborted.reason}: giving this lesson up as abort does`, 'warn');
      await beyondCancellation(discardUnfiledLesson);
    } else if (err instanceof NotTheReference) {
      outcome = 'failed';
    } else {
      throw err;
    }
  } finally {
    await beyondCancellation(finishPreparation);
  }
  await beyondCancellation(async () => {
    await writeReport(outcome);
    if (status.lessonId) await closeNotebook();
  });
  if (cancelled) throw cancelled;
  if (outcome === 'failed') throw ApplicationFailure.nonRetryable(status.summary, 'NotTheReference');
  return status;

  // ---- the steps ------------------------------------------------------------------------

  /** Check the lectureship: this host must be the registered reference machine. */
  async function checkLectureship(): Promise<void> {
    setPhase('checking-lectureship');
    // A worker that does not answer halts like any step; a refusal fails the run.
    await step('check the lectureship', async () => {
      try {
        await quick.checkLectureship(input.reference);
      } catch (err) {
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'NotTheReference') {
          status.summary = err.cause.message;
          note(`lectureship refused: ${err.cause.message}`);
          setPhase('failed');
          throw new NotTheReference();
        }
        throw err;
      }
    });
  }

  /** Check if still holding a lesson: a rollout running or another run updating means nothing to do now. */
  async function checkIfStillHoldingLesson(): Promise<boolean> {
    setPhase('checking-lessons-in-progress');
    const { busy, reason, staleRunId, staleLessonId } = await step('check if still holding a lesson', () => quick.lessonInProgress(run));
    note(reason);
    takeOver = staleRunId;
    // The ended run cleaned nothing up: its unfiled lesson's items wait again (before the claim, so an end in between loses none).
    if (staleLessonId && patched('release-ended-lesson')) {
      const back = await step(`give back the inbox items of lesson ${staleLessonId}`, () => quick.releaseEndedLesson(staleLessonId));
      note(
        back.filed
          ? `lesson ${staleLessonId} of the ended run was filed: its inbox items stay with it`
          : `${back.released} inbox items taken by lesson ${staleLessonId} of the ended run, never filed, were given back to the inbox`,
      );
    }
    if (busy) {
      status.summary = `nothing done: ${reason}`;
      setPhase('busy');
    }
    return busy;
  }

  /**
   * Prepare for a lesson: set the "updating" flag in the operational database. The flag
   * is claimed only when free, already ours, or left by the ended run just checked;
   * another run that got it first means there is nothing to do now.
   */
  async function prepareForLesson(): Promise<boolean> {
    setPhase('preparing');
    status.lessonId = lessonId;
    upsertSearchAttributes([{ key: searchAttributes.lessonId, value: lessonId }]);
    // Counted as set before the call: a write that committed before a timeout is still cleared at the end.
    flagSet = true;
    const claimed = await step('prepare for the lesson', () => quick.setUpdatingFlag({ ...run, lessonId, ...(takeOver ? { takeOver } : {}) }));
    // Strictly false: the activity of earlier versions answered nothing (and always set the flag).
    if (claimed === false) {
      flagSet = false;
      status.lessonId = undefined;
      status.summary = 'nothing done: another run set the updating flag first';
      note(status.summary);
      setPhase('busy');
      return false;
    }
    note(`updating flag set; this lesson would be ${lessonId}`);
    return true;
  }

  /** Check new subject matter: items waiting in the inbox, or changes an aborted run left unfiled; for a subject of the cluster's own, its check command. */
  async function checkNewSubjectMatter(subject: string): Promise<boolean> {
    if (own.has(subject)) {
      const checked = await step(`check new subject matter (${subject})`, () => commands.runCheckCommand({ lessonId, subject }));
      prepareCommands.set(subject, checked.prepare);
      const unfiled = checked.unfiled === true;
      status.subjects.push({
        subject,
        waiting: checked.newMatter ? 1 : 0,
        unfiled: unfiled ? 1 : 0,
        taken: 0,
        applied: 0,
        refused: 0,
        found: checked.found,
      });
      note(`${subject}: ${checked.newMatter ? 'new subject matter' : 'nothing new'}${checked.found ? `; the check said:\n${checked.found}` : ''}`);
      // Changes an aborted run made in servedDir go out with this lesson, new matter or not (the commands run again over them).
      if (unfiled) note(`${subject}: the served folder holds changes no filed lesson has: they go out with this lesson`);
      return checked.newMatter || unfiled;
    }
    const found = await step(`check new subject matter (${subject})`, () => quick.countNewSubjectMatter(subject));
    const progress: SubjectProgress = { subject, ...found, taken: 0, applied: 0, refused: 0 };
    status.subjects.push(progress);
    note(`${subject}: ${found.waiting} new in the inbox, ${found.unfiled} unfiled changes`);
    return found.waiting + found.unfiled > 0;
  }

  /** Prepare the subject matter: update the reference database and its index, write the lesson files. */
  async function prepareSubjectMatter(subject: string): Promise<void> {
    setPhase('preparing');
    const progress = status.subjects.find((s) => s.subject === subject)!;
    if (own.has(subject)) {
      // One step per command: a halt names the command, and resume runs that one again.
      for (const [index, label] of prepareCommands.get(subject)!.entries()) {
        const done = await step(`prepare the subject matter (${subject}): ${label}`, () =>
          commands.runPrepareCommand({ lessonId, subject, index, label }),
        );
        progress.applied += 1;
        note(
          `${subject}: ${label} done in ${(done.durationMs / 1000).toFixed(1)} s, ${done.filesChanged} files changed${done.output ? `; it printed:\n${done.output}` : ''}`,
        );
      }
      return;
    }
    const db = await step(`prepare the subject matter (${subject}): reference database`, () => long.updateReferenceDatabase({ lessonId, subject }));
    Object.assign(progress, { taken: db.taken, applied: db.applied, refused: db.refused.length });
    for (const r of db.refused) note(`${subject}: inbox item ${r.inboxId} (${r.externalId}) refused: ${r.reason}`);
    const files = await step(`prepare the subject matter (${subject}): lesson files`, () => long.writeLessonFiles({ lessonId }));
    note(`${subject}: ${db.applied} items applied, ${db.refused.length} refused; ${files.filesWritten} files written, ${files.filesRemoved} removed`);
  }

  /** Proof-read the preparation: test queries and the test suite against the reference's own web server. */
  async function proofReadPreparation(subject: string): Promise<void> {
    setPhase('proof-reading');
    const progress = status.subjects.find((s) => s.subject === subject)!;
    for (;;) {
      const result = await step(`proof-read the preparation (${subject})`, () =>
        own.has(subject) ? commands.runProofReadCommands({ lessonId, subject }) : long.proofReadLesson({ lessonId, subject }),
      );
      progress.proofRead = result;
      if (result.passed) {
        testQueries.push(...result.testQueries);
        searchProbe ??= result.searchProbe;
        note(`${subject}: proof-read, ${result.checks} checks passed`);
        return;
      }
      await halt(
        `proof-read the preparation (${subject})`,
        `${result.failures.length} of ${result.checks} checks failed: ${result.failures.slice(0, 5).join('; ')}`,
      );
      setPhase('proof-reading');
    }
  }

  function newLessonNeeded(): boolean {
    return status.subjects.some((s) => s.applied + s.unfiled > 0);
  }

  /** File the preparation: database backup, manifest and stats; old lessons pruned. */
  async function filePreparation(): Promise<void> {
    setPhase('filing');
    // A lesson of the cluster's own files is copied between its snapshot commands, and backed up by its own command: as long as they take.
    const filing = own.size > 0 ? commands : long;
    filed = await step('file the preparation', () => filing.fileLesson({ lessonId, testQueries, ...(searchProbe ? { searchProbe } : {}) }));
    status.stats = filed.stats;
    note(
      `filed: ${filed.stats.files} files, ${filed.stats.filesAdded} added, ${filed.stats.filesChanged} changed, ${filed.stats.filesRemoved} removed; backup ${filed.stats.backupFile}`,
    );
    if (filed.pruned.length > 0) note(`pruned old lessons: ${filed.pruned.join(', ')}`);
  }

  /** Call the scholars: the "lesson-ready" flag names the filed lesson. */
  async function callScholars(): Promise<void> {
    setPhase('calling-scholars');
    await step('call the scholars', () => quick.markLessonReady({ lessonId, manifestSha256: filed!.lesson.manifestSha256 }));
  }

  /** Hand out the books: the manifest is checked once more at the source and published. */
  async function handOutBooks(): Promise<void> {
    await step('hand out the books', () => long.publishLesson(filed!.lesson));
  }

  /** Hold the lesson: the group-by-group rollout, a child workflow with its own halts and signals. */
  async function holdTheLesson(): Promise<Report['status']> {
    setPhase('holding-lesson');
    const childId = workflowIds.holdLesson(lessonId);
    status.rollout = { workflowId: childId };
    const result: RolloutStatus = await step('hold the lesson', async () => {
      // Recorded before it starts: "is a rollout of this cluster on" must not wait for visibility to hear of it.
      if (patched(RECORD_THE_ROLLOUT)) await quick.recordLessonRun({ workflowId: childId, type: 'holdLesson', recordedBy: workflowId });
      const child = await startChild<typeof HoldLessonWorkflow>('holdLesson', {
        workflowId: childId,
        args: [{ ...input.rollout, lesson: filed!.lesson, requestedBy: workflowId }],
        // The rollout finishes on its own even if this run is terminated: stopping it halfway would strand satellites.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: [
          { key: searchAttributes.cluster, value: input.cluster },
          { key: searchAttributes.lessonId, value: lessonId },
        ],
      });
      // An abort while the rollout runs is the rollout's to carry out: it puts the satellites back.
      const ended = child.result();
      try {
        await Promise.race([ended, condition(() => decisions.aborted)]);
      } catch (err) {
        // Our cancellation reaches the rollout too (it is our child): its restore is what we wait for.
        if (cancellationOf(err)?.rethrow) await beyondCancellation(() => ended.catch(() => undefined));
        throw err;
      }
      if (decisions.aborted) {
        // From here the abort is the rollout's to carry out; its result says how it ended.
        decisions.clearAbort();
        note(`abort passed on to the rollout ${childId}`);
        await child.signal('abort', 'aborted through prepareLesson');
      }
      return ended;
    });
    status.rollout.phase = result.phase;
    if (result.phase === 'aborted') {
      status.summary = `lesson ${lessonId} was filed, but its rollout was aborted; the satellites serve their previous lesson`;
      return 'aborted';
    }
    const content =
      own.size > 0
        ? `${filed!.stats.files} files, ${filed!.stats.filesAdded + filed!.stats.filesChanged} new or changed`
        : `${filed!.stats.records} records and ${filed!.stats.documents} documents`;
    status.summary = `lesson ${lessonId}: ${content}; served by ${result.serving} satellites`;
    return 'ok';
  }

  /** Finish the preparation: unset the "updating" flag (only this run's). */
  async function finishPreparation(): Promise<void> {
    if (!flagSet) return;
    setPhase('finishing');
    await quick.clearUpdatingFlag(run).catch((err) => note(`could not unset the updating flag: ${operatorMessage(err)}; the next run takes it over`));
    flagSet = false;
  }

  /** After an abort: an unfiled lesson's folder goes, and its inbox items wait again for the next lesson. */
  async function discardUnfiledLesson(): Promise<void> {
    status.summary = status.rollout
      ? `aborted by the operator while holding lesson ${lessonId}; see the rollout ${status.rollout.workflowId} for where each satellite stands`
      : filed
        ? `aborted by the operator after lesson ${lessonId} was filed; no satellite was touched`
        : `aborted by the operator before filing; no satellite was touched, the prepared changes go out with the next lesson`;
    if (filed) return;
    await quick.discardLesson(lessonId).catch((err) => note(`could not discard the unfiled lesson: ${operatorMessage(err)}`));
  }

  /** Write a report: the task monitor gets the status and the log. */
  async function writeReport(outcome: Report['status']): Promise<void> {
    setPhase(
      outcome === 'ok'
        ? 'done'
        : outcome === 'aborted'
          ? 'aborted'
          : outcome === 'failed'
            ? 'failed'
            : status.phase === 'busy'
              ? 'busy'
              : 'nothing-to-do',
    );
    if (outcome === 'ok' && status.summary === 'starting') status.summary = `lesson ${lessonId} prepared`;
    await report(outcome, status.summary, '');
  }

  /** Close the notebook: the proof-reading web server stops, leftovers of unfiled lessons go. */
  async function closeNotebook(): Promise<void> {
    await quick.closeNotebook().catch((err) => note(`could not tidy up: ${operatorMessage(err)}`));
  }

  // ---- halting --------------------------------------------------------------------------

  function report(outcome: Report['status'], summary: string, key: string): Promise<void> {
    return quick
      .writeReport({
        runKey: `${workflowId}/${runId}${key}`,
        task: 'prepareLesson',
        machine: input.reference,
        status: outcome,
        summary,
        log,
        details: {
          lessonId: status.lessonId,
          subjects: status.subjects,
          stats: status.stats,
          rollout: status.rollout,
          requestedBy: input.requestedBy,
          halted: status.halted,
        },
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
      })
      .then(() => undefined)
      .catch((err) => {
        if (isCancellation(err)) throw err;
        note(`the report to the task monitor, or its alert, did not go through: ${operatorMessage(err)}`);
      });
  }

  /** Halts until the operator decides: returns on resume, throws Aborted on abort. */
  async function halt(stepName: string, reason: string): Promise<void> {
    const before = status.phase;
    const open = { step: stepName, reason, since: new Date().toISOString() };
    let shown = false;
    try {
      // Open before it is visible: a resume that arrives while the report is being written counts.
      await decisions.halt(open, async (id) => {
        shown = true;
        status.halted = open;
        note(`halted in "${stepName}": ${reason}`, 'warn');
        setPhase('halted');
        await report('halted', `prepareLesson halted in "${stepName}": ${reason}`, `/halt-${id}`);
      });
    } finally {
      if (shown) {
        status.halted = null;
        setPhase(before);
      }
    }
    note(`resumed "${stepName}"`);
  }

  /** Runs a step; when it fails (after its own retries) halts, and on resume runs it again. */
  async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
    for (;;) {
      decisions.throwIfAborted();
      try {
        return await work();
      } catch (err) {
        if (isCancellation(err) || err instanceof Aborted || err instanceof NotTheReference) throw err;
        await halt(name, operatorMessage(err));
      }
    }
  }
}

export { lessonIdFor };

/** Patch: the rollout's workflow id is recorded in the operational database before the child starts. */
const RECORD_THE_ROLLOUT = 'record-the-rollout';
