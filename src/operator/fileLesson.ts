/**
 * Lessons built elsewhere: `lessonplan lesson file <folder>` files a folder that another
 * pipeline made (a CI job that builds the data) as a lesson, the way prepareLesson files
 * one (copied into `<lessonsDir>/<lessonId>`, `version` added, manifest and stats, the
 * lessons row), and `lessonplan lesson hold <lessonId>` rolls a filed lesson out with
 * holdLesson. Both run on the reference machine, where the lessons live.
 *
 * The expected answers of the examination are the files the `--query` paths name (each
 * a file of the folder, served byte for byte by lessonplan's Apache), since no web server
 * of the reference has answered them.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { execa } from 'execa';
import type { ClusterConfig } from '../config/schema';
import type { Database } from '../db/database';
import { compareManifests, lessonSource, latestFiledLesson, pruneLessons, readManifestFile } from '../activities/reference/filing';
import { VERSION_FILE, versionBody } from '../lesson/layout';
import { buildManifest, readManifest, sha256, verifyAgainstManifest } from '../lesson/manifest';
import { LESSON_META_DIR, MANIFEST_FILE, type FiledLesson } from '../shared/lesson';
import { lessonIdFor } from '../shared/lessonId';
import { searchAttributes } from '../shared/names';
import { lessonRunsOfCluster, startHoldLesson, withOperationalDatabase } from './rollout';

/** The description of a lesson filed by `lesson file`, kept with it for `lesson hold`. */
const FILED_FILE = `${LESSON_META_DIR}/filed.json`;

export class LessonFileError extends Error {
  override readonly name = 'LessonFileError';
}

export async function fileFolderAsLesson(
  config: ClusterConfig,
  db: Database,
  folder: string,
  queries: string[],
): Promise<{ lesson: FiledLesson; previous: string | null; filesChanged: number; pruned: string[] }> {
  const source = path.resolve(folder);
  if (!existsSync(source) || !statSync(source).isDirectory()) throw new LessonFileError(`${source} is not a folder`);
  for (const name of [VERSION_FILE, LESSON_META_DIR]) {
    if (existsSync(path.join(source, name)))
      throw new LessonFileError(`${path.join(source, name)} is lessonplan's to write in every lesson: rename it`);
  }
  for (const query of queries) {
    const file = path.join(source, ...query.split('/').filter(Boolean));
    if (!query.startsWith('/') || !existsSync(file) || !statSync(file).isFile()) {
      throw new LessonFileError(`--query ${query}: expected the URL path of a file in ${source}, such as /index.html`);
    }
  }
  const reference = config.reference;
  const lessonId = lessonIdFor(new Date(), randomUUID());
  const dir = path.join(reference.lessonsDir, lessonId);
  const building = `${dir}.building`;
  mkdirSync(building, { recursive: true });
  try {
    // A copy: the folder may be rebuilt or changed in place once filed.
    await execa('cp', ['-a', '--reflink=auto', '--', `${source}/.`, building]);
    writeFileSync(path.join(building, VERSION_FILE), versionBody(lessonId));
    renameSync(building, dir);
  } catch (err) {
    rmSync(building, { recursive: true, force: true });
    throw err;
  }
  const manifest = await buildManifest(dir, lessonId);
  const manifestText = JSON.stringify(manifest);
  const previous = await latestFiledLesson(db);
  const previousManifest = previous ? readManifestFile(path.join(reference.lessonsDir, previous)) : undefined;
  const totalBytes = manifest.files.reduce((n, f) => n + f.size, 0);
  const changes = compareManifests(manifest, previousManifest);
  const stats = { records: 0, documents: 0, files: manifest.files.length, totalBytes, ...changes, backupFile: null, backupBytes: 0 };
  const lesson: FiledLesson = {
    lessonId,
    source: lessonSource(reference, dir),
    manifestSha256: sha256(manifestText),
    fileCount: manifest.files.length,
    totalBytes,
    testQueries: queries.map((query) => ({
      name: `filed: ${query}`,
      path: query,
      expectedSha256: sha256(readFileSync(path.join(dir, ...query.split('/').filter(Boolean)))),
    })),
  };
  mkdirSync(path.join(dir, LESSON_META_DIR), { recursive: true });
  writeFileSync(path.join(dir, MANIFEST_FILE), manifestText);
  writeFileSync(path.join(dir, FILED_FILE), JSON.stringify(lesson, null, 2));
  await db.query('INSERT INTO lessons (lesson_id, manifest_sha256, stats, backup_file, filed) VALUES ($1, $2, $3, NULL, $4)', [
    lessonId,
    lesson.manifestSha256,
    JSON.stringify(stats),
    JSON.stringify(lesson),
  ]);
  const pruned = await pruneLessons(reference, db, lessonId);
  return { lesson, previous, filesChanged: changes.filesAdded + changes.filesChanged + changes.filesRemoved, pruned };
}

/**
 * Starts holdLesson for a lesson `lesson file` filed, once its folder is checked against
 * its manifest; refused while a rollout or a prepareLesson of this cluster runs.
 */
export async function holdFiledLesson(client: Client, config: ClusterConfig, lessonId: string): Promise<{ workflowId: string; lesson: FiledLesson }> {
  const dir = path.join(config.reference.lessonsDir, lessonId);
  let lesson: FiledLesson;
  try {
    lesson = JSON.parse(readFileSync(path.join(dir, FILED_FILE), 'utf8')) as FiledLesson;
  } catch {
    throw new LessonFileError(
      existsSync(dir)
        ? `lesson ${lessonId} was not filed by "lessonplan lesson file" (it has no ${FILED_FILE}): a lesson prepareLesson filed is held by its own run`
        : `there is no lesson ${lessonId} in ${config.reference.lessonsDir}`,
    );
  }
  const manifest = await readManifest(dir, lesson.manifestSha256).catch((err: Error) => {
    throw new LessonFileError(`lesson ${lessonId} cannot be held: ${err.message}`);
  });
  const problems = await verifyAgainstManifest(dir, manifest);
  if (problems.length > 0)
    throw new LessonFileError(`lesson ${lessonId} changed after it was filed (${problems.slice(0, 5).join('; ')}); file the folder again`);
  const running = await withOperationalDatabase(config, (ops) => lessonRunsOfCluster(client, config, ops));
  if (running.length > 0) throw new LessonFileError(`not now: ${running.join(', ')} still runs; hold the lesson once it has ended`);
  const handle = await startHoldLesson(client, config, lesson, 'lessonplan lesson hold');
  return { workflowId: handle.workflowId, lesson };
}
