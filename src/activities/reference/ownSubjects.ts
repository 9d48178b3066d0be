/**
 * The teacher's steps for a subject of the cluster's own: its commands, run on the
 * reference machine in the config's folder against `reference.servedDir`, the folder that
 * holds what the satellites serve. lessonplan decides nothing about the data itself: the
 * check command says whether there is new matter, the prepare commands update the files,
 * the proof-read commands and queries say whether the result is right; lessonplan runs
 * them in order, shows their output while they run, keeps its end for the report, halts
 * on a failure with the command, its exit status and that end, and checks that a subject
 * wrote only the files it owns.
 *
 * Every command gets the lesson in its environment:
 *   LESSON_ID            the lesson being prepared
 *   LESSON_SUBJECT       the subject
 *   LESSON_DIR           the folder being prepared (reference.servedDir)
 *   PREVIOUS_LESSON      the last filed lesson's id ("" before the first)
 *   PREVIOUS_LESSON_DIR  its filed folder ("" before the first)
 *   LESSON_URL           proof-read commands only: the reference's web server serving LESSON_DIR
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { fieldPath } from '../../config/messages';
import { NEW_MATTER_EXIT, NOTHING_NEW_EXIT, type ClusterConfig, type OwnSubject } from '../../config/schema';
import { sha256 } from '../../lesson/manifest';
import { LESSON_META_DIR, type TestQuery } from '../../shared/lesson';
import type { ProofReadResult } from '../../shared/preparation';
import { freeStablePort } from '../../stack/ports';
import { startApache, stopApache } from '../satellite/apache';
import { ServiceError, startServiceSet, stopServiceSet, type ServiceSet } from '../satellite/ownServices';
import { UserCommandFailed } from '../common/userCommand';
import { keepAlive } from '../keepAlive';
import { runAsStep } from '../common/commandStep';
import { VERSION_FILE } from '../../lesson/layout';
import { pointAt, proofReadingHost } from './proofReading';

type ReferenceConfig = ClusterConfig['reference'];

/** servedDir's files (size, mtime, inode) as a lesson was filed from it, kept in that lesson. */
export const SERVED_LISTING_FILE = `${LESSON_META_DIR}/served.json`;

/** Files lessonplan itself writes into every lesson, which no subject may write in servedDir. */
export const LESSONPLAN_OWNED = [VERSION_FILE, `${LESSON_META_DIR}/`];

/** What a check found: new matter or not, in its own words, and the labels of the prepare commands to run. */
export interface OwnCheckResult {
  newMatter: boolean;
  found: string;
  /** One label per prepare command, in order (its argument array, shortened): the steps the run will show. */
  prepare: string[];
  /**
   * servedDir is not as the last lesson was filed from it: changes an aborted run prepared
   * (the check, asking the data, finds nothing new once they are made) still to go out.
   */
  unfiled?: boolean;
}

export interface OwnPrepareResult {
  field: string;
  exitCode: number;
  durationMs: number;
  output: string;
  /** Files in servedDir the command added, changed or removed. */
  filesChanged: number;
}

export function ownSubjectOf(reference: ReferenceConfig, subject: string): { own: OwnSubject; index: number } {
  const own = reference.ownSubjects.find((o) => o.name === subject);
  if (!own) {
    throw ApplicationFailure.nonRetryable(
      `subject "${subject}" has no commands in this worker's config (reference.subjects): was the config changed while the run was on? Abort it and start again`,
      'ConfigChanged',
    );
  }
  return { own, index: reference.subjects.indexOf(subject) };
}

/** How a command is shown as a step: its argument array, the program by its file name. */
export function commandLabel(argv: string[]): string {
  const [program, ...args] = argv;
  const shown = [path.basename(program!), ...args].join(' ');
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

/** The environment of every command of a subject (see the module comment). */
export function lessonEnvironment(
  reference: ReferenceConfig,
  lesson: { lessonId: string; subject: string; previous: string | null },
): Record<string, string> {
  return {
    LESSON_ID: lesson.lessonId,
    LESSON_SUBJECT: lesson.subject,
    LESSON_DIR: reference.servedDir!,
    PREVIOUS_LESSON: lesson.previous ?? '',
    PREVIOUS_LESSON_DIR: lesson.previous ? path.join(reference.lessonsDir, lesson.previous) : '',
  };
}

/** Check new subject matter: the subject's check command, by its exit status. */
export async function checkOwnSubjectMatter(
  reference: ReferenceConfig,
  lesson: { lessonId: string; subject: string; previous: string | null },
): Promise<OwnCheckResult> {
  const { own, index } = ownSubjectOf(reference, lesson.subject);
  const run = await runAsStep(own.check, {
    field: fieldPath(['reference', 'subjects', index, 'check']),
    env: lessonEnvironment(reference, lesson),
    accept: [NEW_MATTER_EXIT, NOTHING_NEW_EXIT],
    expected: `${NEW_MATTER_EXIT} for new matter or ${NOTHING_NEW_EXIT} for nothing new`,
  });
  return {
    newMatter: run.exitCode === NEW_MATTER_EXIT,
    found: run.output,
    prepare: own.prepare.map((c) => commandLabel(c.command)),
    unfiled: servedDirChangedSince(reference, lesson.previous),
  };
}

/**
 * One prepare command of the subject. With `owns`, the files it added, changed or removed
 * in servedDir must all be the subject's; lessonplan's own files (version, .lesson/) no
 * subject may write.
 */
export async function runPrepareCommand(
  reference: ReferenceConfig,
  lesson: { lessonId: string; subject: string; previous: string | null; index: number; label: string },
): Promise<OwnPrepareResult> {
  const { own, index } = ownSubjectOf(reference, lesson.subject);
  const command = own.prepare[lesson.index];
  if (!command || commandLabel(command.command) !== lesson.label) {
    throw ApplicationFailure.nonRetryable(
      `prepare command ${lesson.index + 1} of subject "${lesson.subject}" is no longer "${lesson.label}" in this worker's config: abort this run and start again`,
      'ConfigChanged',
    );
  }
  const field = fieldPath(['reference', 'subjects', index, 'prepare', lesson.index]);
  const before = listFiles(reference.servedDir!);
  const run = await runAsStep(command, { field, env: lessonEnvironment(reference, lesson) });
  const changed = changedFiles(before, listFiles(reference.servedDir!));
  // Without `owns`, a subject may write anything but lessonplan's own files.
  const allowed = own.owns ?? [''];
  const outside = changed.filter((file) => LESSONPLAN_OWNED.some((p) => owned(p, file)) || !allowed.some((p) => owned(p, file)));
  if (outside.length > 0) {
    const whose = (file: string) => {
      if (LESSONPLAN_OWNED.some((p) => owned(p, file))) return 'lessonplan writes it into every lesson';
      const owner = reference.ownSubjects.find((o) => o.owns?.some((p) => owned(p, file)));
      return owner ? `subject "${owner.name}" owns it` : 'no subject owns it';
    };
    throw ApplicationFailure.nonRetryable(
      `${field} ${JSON.stringify(command.command)} wrote ${outside.length} file${outside.length === 1 ? '' : 's'} in ${reference.servedDir} outside what subject "${lesson.subject}" owns ` +
        `(${(own.owns ?? []).join(', ')}): ${outside
          .slice(0, 5)
          .map((f) => `${f} (${whose(f)})`)
          .join('; ')}. Put the files back or give the subject them in reference.subjects[${index}].owns, then resume`,
      'SubjectWroteOutsideItsFiles',
    );
  }
  return { field, exitCode: run.exitCode, durationMs: run.durationMs, output: run.output, filesChanged: changed.length };
}

/**
 * Proof-read: the subject's test commands against the reference's web server serving
 * servedDir (LESSON_URL), then its queries, whose answers become the lesson's expected
 * answers. A failing command or query is a failure of the proof-read (the run halts).
 */
export async function proofReadOwnSubject(
  reference: ReferenceConfig,
  lesson: { lessonId: string; subject: string; previous: string | null },
): Promise<ProofReadResult> {
  const { own, index } = ownSubjectOf(reference, lesson.subject);
  const server = await startProofReadingServer(reference, lesson);
  const base = `http://127.0.0.1:${server.port}`;
  const failures: string[] = [];
  const testQueries: TestQuery[] = [];
  let checks = 0;
  try {
    const env = { ...lessonEnvironment(reference, lesson), LESSON_URL: `${base}/` };
    for (const [j, command] of own.proofRead.commands.entries()) {
      checks += 1;
      try {
        await runAsStep(command, { field: fieldPath(['reference', 'subjects', index, 'proofRead', 'commands', j]), env });
      } catch (err) {
        if (!(err instanceof ApplicationFailure) || err.type !== 'UserCommandFailed') throw err;
        failures.push(err.message);
      }
    }
    for (const query of own.proofRead.queries) {
      checks += 1;
      try {
        const response = await fetch(`${base}${query}`, { signal: Context.current().cancellationSignal });
        const body = Buffer.from(await response.arrayBuffer());
        if (response.status !== 200) failures.push(`query ${query}: HTTP ${response.status} from the reference's web server`);
        else testQueries.push({ name: `${lesson.subject}: ${query}`, path: query, expectedSha256: sha256(body) });
      } catch (err) {
        failures.push(`query ${query}: ${(err as Error).message}`);
      }
      Context.current().heartbeat({ checks });
    }
  } catch (err) {
    // What failed in the proof-read is the news, not a stop that fails after it.
    await server.stop().catch(() => undefined);
    throw err;
  }
  await server.stop();
  return { passed: failures.length === 0, checks, failures, testQueries };
}

const referenceServiceSet = (own: NonNullable<ReferenceConfig['webServer']>): ServiceSet => ({
  who: 'the reference',
  field: 'reference.webServer',
  services: own.services,
  upDeadline: own.upDeadline,
});

/** Stops the reference's own web server (reference.webServer), wherever a proof-read left it: the notebook closed, the cluster down. */
export async function stopReferenceServices(reference: ReferenceConfig): Promise<void> {
  const own = reference.webServer;
  if (!own) return;
  const set = referenceServiceSet(own);
  await stopServiceSet(set, { LESSON_DIR: reference.servedDir!, PORT: String(own.port) });
}

/** A service command that failed, or a service that did not come up or go down, is the operator's to fix: not retried. */
function asServiceFailure(err: unknown): never {
  if (err instanceof UserCommandFailed || err instanceof ServiceError) throw ApplicationFailure.nonRetryable(err.message, 'ServiceFailed');
  throw err;
}

/**
 * The web server the proof-read asks, serving servedDir: the reference's own services
 * (reference.webServer), started afresh on what was just prepared, or lessonplan's Apache
 * on servedDir's files. A service that does not start fails the proof-read step with its
 * command, exit status and output (the run halts); `stop` always stops them.
 */
async function startProofReadingServer(
  reference: ReferenceConfig,
  lesson: { lessonId: string; subject: string; previous: string | null },
): Promise<{ port: number; stop: () => Promise<void> }> {
  const own = reference.webServer;
  if (own) {
    const set = referenceServiceSet(own);
    const env = { ...lessonEnvironment(reference, lesson), PORT: String(own.port) };
    const signal = Context.current().cancellationSignal;
    // Services are silent while they come up (within upDeadline): the activity heartbeats meanwhile.
    const stop = () => keepAlive(() => stopServiceSet(set, env).catch(asServiceFailure));
    // Left running by a run that was cut short: they read what was served then.
    await keepAlive(() => stopServiceSet(set, env, signal).catch(asServiceFailure));
    try {
      await keepAlive(() => startServiceSet(set, env, signal));
    } catch (err) {
      await stopServiceSet(set, env).catch(() => undefined);
      asServiceFailure(err);
    }
    return { port: own.port, stop };
  }
  const port = reference.proofReadPort || (await freeStablePort());
  const host = proofReadingHost(reference, port);
  await stopApache(host, 'exam');
  pointAt(host, reference.servedDir!);
  await startApache(host, 'exam');
  return {
    port,
    stop: async () => {
      await stopApache(host, 'exam');
    },
  };
}

/** Whether servedDir differs from what the lesson `previous` was filed from (without a record: no). */
function servedDirChangedSince(reference: ReferenceConfig, previous: string | null): boolean {
  if (!previous) return false;
  let filed: Record<string, string>;
  try {
    filed = JSON.parse(readFileSync(path.join(reference.lessonsDir, previous, SERVED_LISTING_FILE), 'utf8')) as Record<string, string>;
  } catch {
    return false;
  }
  return changedFiles(new Map(Object.entries(filed)), listFiles(reference.servedDir!)).length > 0;
}

/** `pattern` (a file, or a folder ending in "/"; "" is everything) covers `file`. */
function owned(pattern: string, file: string): boolean {
  return pattern === '' || pattern === file || (pattern.endsWith('/') && file.startsWith(pattern));
}

/** Every file under `dir` (relative, "/"-separated) with what tells a change: size, mtime and inode. */
export function listFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (at: string, rel: string) => {
    let entries;
    try {
      entries = readdirSync(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(at, entry.name);
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(full, name);
      else {
        const st = lstatSync(full, { bigint: true });
        files.set(name, `${st.size}:${st.mtimeNs}:${st.ino}`);
      }
    }
  };
  walk(dir, '');
  return files;
}

function changedFiles(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed = [...after].filter(([file, mark]) => before.get(file) !== mark).map(([file]) => file);
  const removed = [...before.keys()].filter((file) => !after.has(file));
  return [...changed, ...removed].sort();
}
