/** Building a lesson's manifest, and checking a copy of the lesson against it. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { LESSON_META_DIR, MANIFEST_FILE, type LessonManifest, type ManifestEntry } from '../shared/lesson';

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Every regular file under `dir` (relative, "/"-separated, sorted), the lesson's own meta folder excluded. */
export async function lessonFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .filter((p) => p !== LESSON_META_DIR && !p.startsWith(`${LESSON_META_DIR}/`))
    .sort();
}

export async function buildManifest(dir: string, lessonId: string): Promise<LessonManifest> {
  const files: ManifestEntry[] = [];
  for (const rel of await lessonFiles(dir)) {
    const full = path.join(dir, rel);
    files.push({ path: rel, size: (await stat(full)).size, sha256: await sha256File(full) });
  }
  return { lessonId, files };
}

/** Reads the manifest a lesson folder carries, refusing one whose sha256 is not the expected one. */
export async function readManifest(dir: string, expectedSha256: string): Promise<LessonManifest> {
  const text = await readFile(path.join(dir, MANIFEST_FILE));
  const actual = sha256(text);
  if (actual !== expectedSha256) {
    throw new ManifestMismatch([`${MANIFEST_FILE}: sha256 ${actual} is not the filed lesson's ${expectedSha256}`]);
  }
  return JSON.parse(text.toString('utf8')) as LessonManifest;
}

export class ManifestMismatch extends Error {
  override readonly name = 'ManifestMismatch';
  constructor(readonly problems: string[]) {
    const shown = problems.slice(0, 10).join('; ');
    super(problems.length > 10 ? `${shown}; and ${problems.length - 10} more` : shown);
  }
}

/** The check against a manifest reports progress every this many files, or after a file done this long after the last report. */
const PROGRESS_EVERY_FILES = 250;
const PROGRESS_EVERY_MS = 1_000;

/**
 * Checks every file of `dir` against the manifest: missing, extra, wrong size, wrong
 * content. Returns the problems, one line each; none means the copy is complete.
 * `onProgress` hears of it every 250 files, and after any file that ended a second or
 * more since the last report (a slow disk).
 */
export async function verifyAgainstManifest(dir: string, manifest: LessonManifest, onProgress?: (filesChecked: number) => void): Promise<string[]> {
  const problems: string[] = [];
  let reported = { files: 0, at: Date.now() };
  const present = new Set(await lessonFiles(dir));
  let checked = 0;
  for (const entry of manifest.files) {
    if (checked - reported.files >= PROGRESS_EVERY_FILES || (checked > reported.files && Date.now() - reported.at >= PROGRESS_EVERY_MS)) {
      onProgress?.(checked);
      reported = { files: checked, at: Date.now() };
    }
    checked += 1;
    if (!present.has(entry.path)) {
      problems.push(`${entry.path}: missing`);
      continue;
    }
    present.delete(entry.path);
    const full = path.join(dir, entry.path);
    const size = (await stat(full)).size;
    if (size !== entry.size) {
      problems.push(`${entry.path}: ${size} bytes, the manifest says ${entry.size}`);
      continue;
    }
    if ((await sha256File(full)) !== entry.sha256) problems.push(`${entry.path}: content differs from the manifest (sha256)`);
  }
  for (const extra of present) problems.push(`${extra}: not in the manifest`);
  return problems;
}
