/**
 * The reference machine's side of prepareLesson: each activity is one real action,
 * idempotent (a retry finds its work done or redoes it the same way), with progress
 * heartbeats on the long ones.
 */
import { recordLessonRun, type LessonRunType } from '../../db/lessonRuns';
import { existsSync, rmSync, symlinkSync, renameSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { keepAlive } from '../keepAlive';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ClusterConfig } from '../../config/schema';
import type { Database } from '../../db/database';
import { readManifest, verifyAgainstManifest } from '../../lesson/manifest';
import type { FiledLesson, SearchProbe, TestQuery } from '../../shared/lesson';
import type { FiledPreparation, PreparedSubject, ProofReadResult } from '../../shared/preparation';
import { stopApache } from '../satellite/apache';
import { catalogOf, validateItem } from './catalog';
import { fileLessonFolder, latestFiledLesson, pruneLessons } from './filing';
import { findKeptLesson } from './keptLessons';
import { inboxOf } from './inbox';
import { lectureshipOf, type PreparationRun } from './lectureship';
import { writeLessonFolder } from './lessonFiles';
import { proofRead, proofReadingHost } from './proofReading';
import {
  checkOwnSubjectMatter,
  proofReadOwnSubject,
  runPrepareCommand,
  stopReferenceServices,
  type OwnCheckResult,
  type OwnPrepareResult,
} from './ownSubjects';

export interface PreparationDependencies {
  config: ClusterConfig;
  operational: Database;
  /** The reference database and its URL (pg_dump needs the URL; it holds a password: never log it). */
  reference: Database;
  referenceUrl: string;
  temporal: () => Promise<Client>;
}

const BATCH = 1_000;

/** Heartbeats at most twice a second, so a long step shows progress without flooding the server. */
function throttledHeartbeat(): (details?: unknown) => void {
  let last = 0;
  return (details) => {
    if (Date.now() - last < 500) return;
    last = Date.now();
    Context.current().heartbeat(details);
  };
}

/**
 * One run of a step per lesson at a time in this worker: a retry Temporal schedules
 * while an earlier attempt is still winding down (after a missed heartbeat) waits for
 * it, instead of building into the same folder.
 */
const busyLessons = new Map<string, Promise<unknown>>();
function oneAtATime<T>(lessonId: string, work: () => Promise<T>): Promise<T> {
  const before = busyLessons.get(lessonId) ?? Promise.resolve();
  const mine = before.catch(() => undefined).then(work);
  busyLessons.set(lessonId, mine);
  void mine
    .finally(() => {
      if (busyLessons.get(lessonId) === mine) busyLessons.delete(lessonId);
    })
    .catch(() => undefined);
  return mine;
}

export function createPreparationActivities(deps: PreparationDependencies) {
  const { config, operational } = deps;
  const ref = config.reference;
  const inbox = inboxOf(operational);
  const catalog = catalogOf(deps.reference);
  const lectureship = lectureshipOf(operational, { name: ref.name, cluster: config.cluster }, deps.temporal);

  /** Takes the subject's waiting items and upserts them into the reference database, a batch per transaction. */
  async function applySubjectMatter(input: { lessonId: string; subject: string }): Promise<Omit<PreparedSubject, 'filesWritten' | 'filesRemoved'>> {
    const heartbeat = throttledHeartbeat();
    const signal = Context.current().cancellationSignal;
    const taken = await inbox.take(input.lessonId, input.subject, ref.maxItemsPerLesson);
    let applied = 0;
    for (let after = 0; ;) {
      const items = await inbox.readTaken(input.lessonId, input.subject, after, BATCH);
      if (items.length === 0) break;
      const rows = [];
      const refused = [];
      for (const item of items) {
        const checked = validateItem(input.subject, item);
        if ('row' in checked) rows.push(checked.row);
        else refused.push({ inboxId: item.inboxId, reason: checked.reason });
      }
      await inbox.markFailed(refused);
      // A row PostgreSQL cannot store (a document too big for its search index) fails alone, with the reason; the rest goes in.
      const { refused: unstorable } = await catalog.upsert(rows, { refuse: true });
      await inbox.markFailed(unstorable);
      applied += rows.length - unstorable.length;
      after = items.at(-1)!.inboxId;
      heartbeat({ applied });
      signal.throwIfAborted();
    }
    const refused = await inbox.refused(input.lessonId, input.subject);
    return { subject: input.subject, taken, applied, refused: refused.slice(0, 50) };
  }

  return {
    /** Check the lectureship: this host is the registered reference machine. */
    async checkLectureship(reference: string): Promise<void> {
      await lectureship.check(reference);
    },

    /** Check if still holding a lesson: a rollout running, or another preparation updating. */
    async lessonInProgress(run: PreparationRun): Promise<{ busy: boolean; reason: string; staleRunId?: string; staleLessonId?: string }> {
      return lectureship.inProgress(run);
    },

    /** Record a lesson run about to be started (prepareLesson's rollout), so that checks find it by id before visibility does. */
    async recordLessonRun(run: { workflowId: string; type: LessonRunType; recordedBy: string }): Promise<void> {
      await recordLessonRun(operational, run.workflowId, run.type, run.recordedBy);
    },

    async setUpdatingFlag(run: PreparationRun & { lessonId: string; takeOver?: string }): Promise<boolean> {
      return lectureship.setUpdating(run);
    },

    async clearUpdatingFlag(run: PreparationRun): Promise<boolean> {
      return lectureship.clearUpdating(run);
    },

    /** Items waiting in the inbox for the subject, and changes prepared earlier but never filed. */
    async countNewSubjectMatter(subject: string): Promise<{ waiting: number; unfiled: number }> {
      return { waiting: await inbox.countWaiting(subject), unfiled: await catalog.pendingCount(subject) };
    },

    /**
     * Takes the subject's waiting items for the lesson and upserts them into the reference
     * database (a batch per transaction); PostgreSQL updates the full-text index with
     * each row. Bad items are marked failed in the inbox with the reason.
     */
    async updateReferenceDatabase(input: { lessonId: string; subject: string }): Promise<Omit<PreparedSubject, 'filesWritten' | 'filesRemoved'>> {
      return oneAtATime(input.lessonId, () => keepAlive(() => applySubjectMatter(input)));
    },

    /** Writes the lesson folder: the previous lesson hard-linked, changed answers replaced. */
    async writeLessonFiles(input: { lessonId: string }): Promise<{ filesWritten: number; filesRemoved: number; previous: string | null }> {
      const heartbeat = throttledHeartbeat();
      const signal = Context.current().cancellationSignal;
      return oneAtATime(input.lessonId, () =>
        keepAlive(async () => {
          signal.throwIfAborted();
          const written = await writeLessonFolder({
            lessonsDir: ref.lessonsDir,
            lessonId: input.lessonId,
            previous: await latestFiledLesson(deps.reference),
            catalog,
            signal,
            onProgress: heartbeat,
          });
          return { filesWritten: written.filesWritten, filesRemoved: written.filesRemoved, previous: written.previous };
        }),
      );
    },

    /** Test queries and the test suite against the new lesson, served by the reference's own Apache. */
    async proofReadLesson(input: { lessonId: string; subject: string }): Promise<ProofReadResult> {
      const ctx = Context.current();
      return oneAtATime(input.lessonId, () =>
        keepAlive(() =>
          proofRead({ reference: ref, ...input, catalog, signal: ctx.cancellationSignal, onCheck: (checks) => ctx.heartbeat({ checks }) }),
        ),
      );
    },

    /** For a rollback: a kept lesson's description, or the one filed before `current`; refused when the reference has none. */
    async findKeptLesson(request: { lessonId?: string; current?: string }): Promise<FiledLesson> {
      return findKeptLesson(deps.reference, request);
    },

    /** Backup, manifest, stats, and the filed-lessons record; old lessons pruned. */
    async fileLesson(input: { lessonId: string; testQueries: TestQuery[]; searchProbe?: SearchProbe }): Promise<FiledPreparation> {
      const ctx = Context.current();
      return oneAtATime(input.lessonId, () =>
        keepAlive(() =>
          fileLessonFolder({
            reference: ref,
            db: deps.reference,
            url: deps.referenceUrl,
            catalog,
            ...input,
            signal: ctx.cancellationSignal,
            heartbeat: () => ctx.heartbeat('filing'),
          }),
        ),
      );
    },
    /** Check new subject matter of the cluster's own: its check command says, by exit status. */
    async runCheckCommand(input: { lessonId: string; subject: string }): Promise<OwnCheckResult> {
      return checkOwnSubjectMatter(ref, { ...input, previous: await latestFiledLesson(deps.reference) });
    },

    /** Prepare the subject matter of the cluster's own: one of its update or index-build commands, in servedDir. */
    async runPrepareCommand(input: { lessonId: string; subject: string; index: number; label: string }): Promise<OwnPrepareResult> {
      return oneAtATime(input.lessonId, async () => runPrepareCommand(ref, { ...input, previous: await latestFiledLesson(deps.reference) }));
    },

    /** Proof-read a subject of the cluster's own: its test commands and queries against the reference's web server. */
    async runProofReadCommands(input: { lessonId: string; subject: string }): Promise<ProofReadResult> {
      return oneAtATime(input.lessonId, async () => proofReadOwnSubject(ref, { ...input, previous: await latestFiledLesson(deps.reference) }));
    },

    /** Call the scholars: the "lesson-ready" flag names the lesson satellites may copy. */
    async markLessonReady(lesson: { lessonId: string; manifestSha256: string }): Promise<void> {
      await lectureship.setLessonReady(lesson);
    },

    /**
     * Hand out the books: the filed folder is checked against its manifest once more at
     * the source (a file touched since filing is caught before any satellite copies it),
     * and `ready` points at it.
     */
    async publishLesson(lesson: FiledLesson): Promise<void> {
      const dir = path.join(ref.lessonsDir, lesson.lessonId);
      const manifest = await readManifest(dir, lesson.manifestSha256).catch((err: Error) => {
        throw ApplicationFailure.nonRetryable(`lesson ${lesson.lessonId} cannot be handed out: ${err.message}`, 'LessonChangedAfterFiling');
      });
      const problems = await keepAlive(() => verifyAgainstManifest(dir, manifest, (checked) => Context.current().heartbeat({ checked })));
      if (problems.length > 0) {
        // Unfiled, so that the next lesson builds on the one before and carries these changes again.
        await deps.reference.query('DELETE FROM lessons WHERE lesson_id = $1', [lesson.lessonId]);
        throw ApplicationFailure.nonRetryable(
          `lesson ${lesson.lessonId} changed after it was filed (${problems.slice(0, 5).join('; ')}); it is unfiled: abort this run, and the next run prepares its changes again`,
          'LessonChangedAfterFiling',
        );
      }
      // Handed out: what changed is in a filed lesson now.
      await deps.reference.transaction(async (tx) => {
        await tx.query('DELETE FROM pending_items');
        await tx.query('DELETE FROM pending_terms');
      });
      const link = path.join(ref.lessonsDir, 'ready');
      const temp = `${link}.${process.pid}.new`;
      rmSync(temp, { force: true });
      symlinkSync(lesson.lessonId, temp);
      renameSync(temp, link);
    },

    /**
     * After an abort before filing: the unfiled folder goes; its changes stay pending in
     * the reference database, and the inbox items it took (refused ones aside) wait again,
     * so that nothing taken is lost whatever step the run stopped in.
     */
    async discardLesson(lessonId: string): Promise<boolean> {
      const { rows } = await deps.reference.query('SELECT 1 FROM lessons WHERE lesson_id = $1', [lessonId]);
      if (rows.length > 0) return false;
      await inbox.release(lessonId);
      const dir = path.join(ref.lessonsDir, lessonId);
      const existed = existsSync(dir) || existsSync(`${dir}.building`);
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.building`, { recursive: true, force: true });
      return existed;
    },

    /**
     * The lesson of a run that ended without cleaning up (terminated) will never be
     * filed: the inbox items it took (refused ones aside) wait again, so that the next
     * lesson takes them, applied or not. A lesson that was filed keeps its items. Run
     * only for a run checked to have ended, whose flag this run takes over.
     */
    async releaseEndedLesson(lessonId: string): Promise<{ filed: boolean; released: number }> {
      const { rows } = await deps.reference.query('SELECT 1 FROM lessons WHERE lesson_id = $1', [lessonId]);
      if (rows.length > 0) return { filed: true, released: 0 };
      return { filed: false, released: await inbox.release(lessonId) };
    },

    /** Close the notebook: the proof-reading web server is down, leftovers of unfiled lessons pruned. */
    async closeNotebook(): Promise<string[]> {
      await stopApache(proofReadingHost(ref, ref.proofReadPort), 'exam');
      // A service that will not stop is reported by the next proof-read, which stops them first.
      await keepAlive(() => stopReferenceServices(ref)).catch(() => undefined);
      return pruneLessons(ref, deps.reference, (await latestFiledLesson(deps.reference)) ?? '');
    },
  };
}

export type PreparationActivities = ReturnType<typeof createPreparationActivities>;
