/**
 * Filing a lesson: a backup of the reference database (pg_dump), the lesson's manifest
 * (every file's path, size and sha256), its stats against the previous lesson, and the
 * lessons table row. The pending changes are emptied only once the filed lesson has been
 * checked again and handed out (see publishLesson): a lesson that fails that check is
 * unfiled, and its changes go into the next one. Only the last `keepLessons` lessons and
 * their backups are kept.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClusterConfig } from '../../config/schema';
import type { Database } from '../../db/database';
import { buildManifest, sha256 } from '../../lesson/manifest';
import { LESSON_META_DIR, MANIFEST_FILE, type FiledLesson, type LessonManifest, type SearchProbe, type TestQuery } from '../../shared/lesson';
import type { FiledPreparation, LessonStats } from '../../shared/preparation';
import { pgDump } from '../../db/pgTools';
import type { catalogOf } from './catalog';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { VERSION_FILE, versionBody } from '../../lesson/layout';
import { keepAlive } from '../keepAlive';
import { runAsStep } from '../common/commandStep';
import { listFiles, SERVED_LISTING_FILE } from './ownSubjects';

type ReferenceConfig = ClusterConfig['reference'];

const STATS_FILE = `${LESSON_META_DIR}/stats.json`;
/** Lesson ids start with the time they were made (see prepareLesson); other folders are not ours to prune. */
const LESSON_FOLDER = /^\d{8}-\d{6}-[a-z0-9]+(\.building)?$/;

export const lessonSource = (reference: ReferenceConfig, dir: string) =>
  reference.host === 'localhost' || reference.host === '127.0.0.1' ? dir : `${reference.host}:${dir}`;

/** The newest filed lesson, if any. */
export async function latestFiledLesson(db: Database): Promise<string | null> {
  const { rows } = await db.query<{ lesson_id: string }>('SELECT lesson_id FROM lessons ORDER BY filed_at DESC, lesson_id DESC LIMIT 1');
  return rows[0]?.lesson_id ?? null;
}

/** pg_dump in custom format to `<backupsDir>/<lessonId>.dump`, written aside and renamed when complete. */
export async function backUpDatabase(options: {
  url: string;
  backupsDir: string;
  lessonId: string;
  signal?: AbortSignal;
  heartbeat?: () => void;
}): Promise<{ file: string; bytes: number }> {
  mkdirSync(options.backupsDir, { recursive: true });
  const file = path.join(options.backupsDir, `${options.lessonId}.dump`);
  if (existsSync(file)) return { file, bytes: statSync(file).size };
  const partial = `${file}.partial`;
  const timer = options.heartbeat ? setInterval(options.heartbeat, 5_000) : undefined;
  try {
    await pgDump(options.url, partial, 'the reference database', options.signal);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  } finally {
    if (timer) clearInterval(timer);
  }
  renameSync(partial, file);
  return { file, bytes: statSync(file).size };
}

/** A filed lesson's manifest as written, if it has one. */
export function readManifestFile(dir: string): LessonManifest | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as LessonManifest;
  } catch {
    return undefined;
  }
}

/** What changed against the previous lesson's manifest. */
export function compareManifests(
  current: LessonManifest,
  previous: LessonManifest | undefined,
): Pick<LessonStats, 'filesAdded' | 'filesChanged' | 'filesRemoved' | 'bytesChanged'> {
  const before = new Map((previous?.files ?? []).map((f) => [f.path, f]));
  let filesAdded = 0;
  let filesChanged = 0;
  let bytesChanged = 0;
  for (const f of current.files) {
    const old = before.get(f.path);
    before.delete(f.path);
    if (!old) filesAdded += 1;
    else if (old.sha256 !== f.sha256) filesChanged += 1;
    else continue;
    bytesChanged += f.size;
  }
  return { filesAdded, filesChanged, filesRemoved: before.size, bytesChanged };
}

export async function fileLessonFolder(options: {
  reference: ReferenceConfig;
  db: Database;
  url: string;
  catalog: ReturnType<typeof catalogOf>;
  lessonId: string;
  testQueries: TestQuery[];
  searchProbe?: SearchProbe;
  signal?: AbortSignal;
  heartbeat?: () => void;
}): Promise<FiledPreparation> {
  const { reference, db, lessonId } = options;
  const dir = path.join(reference.lessonsDir, lessonId);
  // Each subject's proof-read recorded its answers; a later subject may have changed a
  // shared search file since. The satellites must match the lesson as filed, so the
  // expected answers are taken from the final files (Apache serves them byte for byte).
  // (A lesson of the cluster's own files is answered by its web server, not file for URL: its answers stand as proof-read.)
  const own = reference.ownSubjects.length > 0;
  const testQueries = options.testQueries.map((q) => {
    if (own) return q;
    const file = path.join(dir, ...q.path.split('/').filter(Boolean).map(decodeURIComponent));
    return existsSync(file) ? { ...q, expectedSha256: sha256(readFileSync(file)) } : q;
  });
  const describe = (manifestText: string, stats: LessonStats): FiledLesson => {
    const manifest = JSON.parse(manifestText) as LessonManifest;
    return {
      lessonId,
      source: lessonSource(reference, dir),
      manifestSha256: sha256(manifestText),
      fileCount: manifest.files.length,
      totalBytes: manifest.files.reduce((n, f) => n + f.size, 0),
      testQueries,
      ...(options.searchProbe ? { searchProbe: options.searchProbe } : {}),
    };
  };

  // Filed before (a retried step): the record stands.
  const { rows: filed } = await db.query<{ stats: LessonStats }>('SELECT stats FROM lessons WHERE lesson_id = $1', [lessonId]);
  if (filed[0] && existsSync(path.join(dir, MANIFEST_FILE))) {
    const stats = filed[0].stats;
    return { lesson: describe(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8'), stats), stats, pruned: [] };
  }
  const previous = await latestFiledLesson(db);
  if (own) await snapshotServedDir(reference, lessonId, previous);
  if (!existsSync(dir))
    throw new Error(`the lesson folder ${dir} does not exist (removed by hand?); abort this run, and the next run prepares the changes again`);

  const backup = await backUpDatabase({
    url: options.url,
    backupsDir: reference.backupsDir!,
    lessonId,
    signal: options.signal,
    heartbeat: options.heartbeat,
  });
  const manifest = await buildManifest(dir, lessonId);
  options.heartbeat?.();
  const manifestText = JSON.stringify(manifest);
  const changed = await options.catalog.pendingByKind();
  const stats: LessonStats = {
    ...changed,
    files: manifest.files.length,
    totalBytes: manifest.files.reduce((n, f) => n + f.size, 0),
    ...compareManifests(manifest, previous ? readManifestFile(path.join(reference.lessonsDir, previous)) : undefined),
    backupFile: backup.file,
    backupBytes: backup.bytes,
  };
  mkdirSync(path.join(dir, LESSON_META_DIR), { recursive: true });
  writeFileSync(path.join(dir, MANIFEST_FILE), manifestText);
  writeFileSync(path.join(dir, STATS_FILE), JSON.stringify({ lessonId, previous, ...stats }, null, 2));

  if (reference.backup) {
    await runAsStep(reference.backup, {
      field: 'reference.backup',
      env: { LESSON_ID: lessonId, LESSON_DIR: dir, BACKUPS_DIR: reference.backupsDir!, PREVIOUS_LESSON: previous ?? '' },
    });
  }

  await db.transaction(async (tx) => {
    await tx.query(
      'INSERT INTO lessons (lesson_id, manifest_sha256, stats, backup_file, filed) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (lesson_id) DO NOTHING',
      [lessonId, sha256(manifestText), JSON.stringify(stats), backup.file, JSON.stringify(describe(manifestText, stats))],
    );
  });
  const pruned = await pruneLessons(reference, db, lessonId);
  return { lesson: describe(manifestText, stats), stats, pruned };
}

/**
 * Files the cluster's own files: servedDir copied into the lesson folder, between the
 * snapshot commands (e.g. a checkpoint, or the reference's database stopped and started),
 * so that the copy is consistent. A copy, never hard links: a database server rewrites its
 * files in place, and a kept lesson must stay as filed. `cp --reflink=auto` shares blocks
 * where the file system can (btrfs, XFS) and copies elsewhere. lessonplan adds `version`
 * (the lesson id, which the load balancer's health check and the examination read).
 */
export async function snapshotServedDir(reference: ReferenceConfig, lessonId: string, previous: string | null): Promise<void> {
  const servedDir = reference.servedDir!;
  const dir = path.join(reference.lessonsDir, lessonId);
  const building = `${dir}.building`;
  if (!existsSync(servedDir)) {
    throw ApplicationFailure.nonRetryable(
      `reference.servedDir ${servedDir} does not exist: the subjects' commands should have filled it; fix it, then resume`,
      'ServedDirMissing',
    );
  }
  for (const name of [VERSION_FILE, LESSON_META_DIR]) {
    if (existsSync(path.join(servedDir, name))) {
      throw ApplicationFailure.nonRetryable(
        `${path.join(servedDir, name)} is lessonplan's to write in every lesson (the lesson id, the manifest): rename it in your application, then resume`,
        'SubjectWroteOutsideItsFiles',
      );
    }
  }
  const env = { LESSON_ID: lessonId, LESSON_DIR: servedDir, PREVIOUS_LESSON: previous ?? '', SNAPSHOT_DIR: building };
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  if (reference.snapshot?.before) await runAsStep(reference.snapshot.before, { field: 'reference.snapshot.before', env });
  try {
    await keepAlive(() => execa('cp', ['-a', '--reflink=auto', '--', `${servedDir}/.`, building]));
  } finally {
    // Whatever the copy did, what was stopped for it starts again.
    if (reference.snapshot?.after) await runAsStep(reference.snapshot.after, { field: 'reference.snapshot.after', env });
  }
  writeFileSync(path.join(building, VERSION_FILE), versionBody(lessonId));
  // What servedDir looked like once filed: a later check that finds it otherwise knows of changes not yet in a lesson.
  mkdirSync(path.join(building, LESSON_META_DIR), { recursive: true });
  writeFileSync(path.join(building, SERVED_LISTING_FILE), JSON.stringify(Object.fromEntries(listFiles(servedDir))));
  rmSync(dir, { recursive: true, force: true });
  renameSync(building, dir);
}

/**
 * Keeps the newest `keepLessons` filed lessons (folders and backups); removes older
 * ones, and folders of lessons that were never filed (aborted runs), except `keep`.
 */
export async function pruneLessons(reference: ReferenceConfig, db: Database, keep: string): Promise<string[]> {
  const { rows } = await db.query<{ lesson_id: string; backup_file: string | null }>(
    'SELECT lesson_id, backup_file FROM lessons ORDER BY filed_at DESC, lesson_id DESC',
  );
  const kept = new Set([keep, ...rows.slice(0, reference.keepLessons).map((r) => r.lesson_id)]);
  const pruned: string[] = [];
  for (const row of rows.slice(reference.keepLessons)) {
    if (kept.has(row.lesson_id)) continue;
    rmSync(path.join(reference.lessonsDir, row.lesson_id), { recursive: true, force: true });
    if (row.backup_file) rmSync(row.backup_file, { force: true });
    await db.query('DELETE FROM lessons WHERE lesson_id = $1', [row.lesson_id]);
    pruned.push(row.lesson_id);
  }
  const filed = new Set(rows.map((r) => r.lesson_id));
  for (const entry of existsSync(reference.lessonsDir) ? readdirSync(reference.lessonsDir) : []) {
    const id = entry.replace(/\.building$/, '');
    if (!LESSON_FOLDER.test(entry) || kept.has(entry) || (filed.has(id) && !entry.endsWith('.building'))) continue;
    if (id === keep && !entry.endsWith('.building')) continue;
    rmSync(path.join(reference.lessonsDir, entry), { recursive: true, force: true });
    pruned.push(entry);
  }
  return pruned;
}
