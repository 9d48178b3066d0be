/**
 * A satellite's copies of the lessons: `<dataDir>/lessons/<lessonId>`, copied with
 * rsync from the reference machine's filed lesson, hard-linking unchanged files to
 * the lesson served now so that only what changed crosses the wire. A copy lands in
 * `<lessonId>.partial` and becomes `<lessonId>` only once every file matched the
 * manifest: a partial or corrupt copy never takes the lesson's name, so it is never
 * served.
 */
import { existsSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { SatelliteConfig } from '../../config/schema';
import { readManifest, verifyAgainstManifest } from '../../lesson/manifest';
import type { FiledLesson } from '../../shared/lesson';

export type LessonLink = 'current' | 'exam';

export const lessonsDir = (satellite: SatelliteConfig) => path.join(satellite.dataDir, 'lessons');
export const lessonDir = (satellite: SatelliteConfig, lessonId: string) => path.join(lessonsDir(satellite), lessonId);

/** The lesson a link points at (`current`: served to users), or undefined. */
export function linkedLesson(satellite: SatelliteConfig, link: LessonLink = 'current'): string | undefined {
  try {
    const target = readlinkSync(path.join(satellite.dataDir, link));
    return target.startsWith('lessons/') ? path.basename(target) : undefined;
  } catch {
    return undefined;
  }
}

/** Points the link at a copied lesson, atomically (a new symlink renamed over the old one). */
export function pointLink(satellite: SatelliteConfig, link: LessonLink, lessonId: string): void {
  if (!existsSync(lessonDir(satellite, lessonId))) throw new Error(`satellite ${satellite.name} has no copy of lesson ${lessonId}`);
  const target = path.join(satellite.dataDir, link);
  const temp = `${target}.${process.pid}.new`;
  rmSync(temp, { force: true });
  symlinkSync(path.join('lessons', lessonId), temp);
  renameSync(temp, target);
}

export interface CopyResult {
  lessonId: string;
  /** Files rsync transferred (changed or new). */
  filesCopied: number;
  /** Size of the files rsync transferred. */
  bytesChanged: number;
  /** Bytes rsync sent over the wire (or pipe), for the ratio to bytesChanged. */
  bytesSent: number;
  /** The copy was already complete and verified; nothing was transferred. */
  alreadyCopied: boolean;
}

export class CorruptCopy extends Error {
  override readonly name = 'CorruptCopy';
}

/** Parses "Total bytes sent: 1,234" style lines of rsync --stats. */
function statNumber(output: string, label: string): number {
  const match = new RegExp(`${label}: ([\\d,.]+)`).exec(output);
  return match ? Number(match[1]!.replace(/[,.]/g, '')) : 0;
}

export interface CopyProgress {
  files: number;
  bytes: number;
  /** Files checked against the manifest after the transfer. */
  verified?: number;
}

/**
 * One copy at a time per satellite in this process. A retry that Temporal schedules
 * while an earlier attempt is still winding down (a missed heartbeat) would otherwise
 * write into the same `.partial` folder; it waits for the earlier one to stop instead.
 */
const copying = new Map<string, Promise<unknown>>();

export function copyLessonFiles(
  satellite: SatelliteConfig,
  lesson: FiledLesson,
  options: { repair: boolean; signal?: AbortSignal; onProgress?: (p: CopyProgress) => void },
): Promise<CopyResult> {
  const before = copying.get(satellite.name) ?? Promise.resolve();
  const mine = before.catch(() => undefined).then(() => copyOnce(satellite, lesson, options));
  copying.set(satellite.name, mine);
  return mine;
}

async function copyOnce(
  satellite: SatelliteConfig,
  lesson: FiledLesson,
  options: { repair: boolean; signal?: AbortSignal; onProgress?: (p: CopyProgress) => void },
): Promise<CopyResult> {
  options.signal?.throwIfAborted();
  const final = lessonDir(satellite, lesson.lessonId);
  const partial = `${final}.partial`;
  mkdirSync(lessonsDir(satellite), { recursive: true });

  if (existsSync(final)) {
    const manifest = await readManifest(final, lesson.manifestSha256).catch(() => undefined);
    if (
      manifest &&
      (await verifyAgainstManifest(final, manifest, (verified) => options.onProgress?.({ files: 0, bytes: 0, verified }))).length === 0
    ) {
      return { lessonId: lesson.lessonId, filesCopied: 0, bytesChanged: 0, bytesSent: 0, alreadyCopied: true };
    }
    // A damaged earlier copy: repair it in place of a partial one.
    rmSync(partial, { recursive: true, force: true });
    renameSync(final, partial);
    options.repair = true;
  }

  const served = linkedLesson(satellite, 'current');
  const args = ['--archive', '--delete', '--stats', '--out-format=%l %n'];
  // Unchanged files come from the served lesson, so rsync sends only what changed: as hard links
  // for lessonplan's Apache, which only reads them; as copies for the satellite's own services,
  // since a database server writes its files in place even when it only reads, and a kept
  // lesson must stay as filed.
  if (served && served !== lesson.lessonId && existsSync(lessonDir(satellite, served))) {
    args.push(`--${satellite.webServer.kind === 'own' ? 'copy' : 'link'}-dest=${lessonDir(satellite, served)}`);
  }
  // After a failure, compare contents, not just sizes and times.
  if (options.repair) args.push('--checksum');
  if (satellite.copyBandwidthLimit) args.push(`--bwlimit=${satellite.copyBandwidthLimit}`);
  const source = lesson.source.endsWith('/') ? lesson.source : `${lesson.source}/`;
  args.push(source, `${partial}/`);

  const progress: CopyProgress = { files: 0, bytes: 0 };
  const rsync = execa('rsync', args, {
    cancelSignal: options.signal,
    reject: false,
    stdin: 'ignore',
    lines: false,
    buffer: { stdout: true, stderr: true },
  });
  // Chunks may end mid-line: keep the unfinished tail for the next one.
  let tail = '';
  rsync.stdout!.on('data', (chunk: Buffer) => {
    const lines = (tail + chunk.toString('utf8')).split('\n');
    tail = lines.pop()!;
    for (const line of lines) {
      const m = /^(\d+) (.+[^/])$/.exec(line);
      if (m) {
        progress.files += 1;
        progress.bytes += Number(m[1]);
      }
    }
    options.onProgress?.(progress);
  });
  // rsync is silent while it links unchanged files; a running rsync is progress too.
  const alive = setInterval(() => options.onProgress?.(progress), 2_000);
  const result = await rsync.finally(() => clearInterval(alive));
  if (result.isCanceled) throw new Error(`copy of lesson ${lesson.lessonId} to ${satellite.name} was cancelled`);
  if (result.exitCode !== 0) {
    throw new Error(
      `rsync of lesson ${lesson.lessonId} from ${lesson.source} to ${satellite.name} exited ${result.exitCode}: ${String(result.stderr).trim().slice(0, 500)}`,
    );
  }

  const manifest = await readManifest(partial, lesson.manifestSha256);
  const problems = await verifyAgainstManifest(partial, manifest, (verified) => options.onProgress?.({ ...progress, verified }));
  if (problems.length > 0) {
    throw new CorruptCopy(
      `the copy of lesson ${lesson.lessonId} on ${satellite.name} does not match its manifest: ${problems.slice(0, 5).join('; ')}`,
    );
  }
  renameSync(partial, final);
  pruneLessonCopies(satellite, lesson.lessonId, satellite.keepLessons);
  const stats = String(result.stdout);
  return {
    lessonId: lesson.lessonId,
    filesCopied: progress.files,
    bytesChanged: statNumber(stats, 'Total transferred file size'),
    bytesSent: statNumber(stats, 'Total bytes sent'),
    alreadyCopied: false,
  };
}

/**
 * Removes old lesson copies so a satellite's disk does not fill up lesson after lesson:
 * the newest `keep` (satellites[].keepLessons) stay, for rollbacks.
 * Never removes what `current` or `exam` points at, the lesson just copied (served next),
 * or the newest copies (an abort puts the previous lesson back, and the next copy
 * hard-links against the served one). Returns what it removed.
 */
export function pruneLessonCopies(satellite: SatelliteConfig, justCopied: string, keep: number): string[] {
  const dir = lessonsDir(satellite);
  const protectedIds = new Set([justCopied, linkedLesson(satellite, 'current'), linkedLesson(satellite, 'exam')].filter(Boolean) as string[]);
  const copies = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.endsWith('.partial'))
    .map((e) => ({ id: e.name, mtime: statSync(path.join(dir, e.name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  const removed: string[] = [];
  // The served, examined and just copied ones are kept anyway: `keep` counts the others.
  for (const copy of copies.filter((c) => !protectedIds.has(c.id)).slice(keep)) {
    rmSync(path.join(dir, copy.id), { recursive: true, force: true });
    removed.push(copy.id);
  }
  return removed;
}

/**
 * Whether this satellite still holds a complete copy of the lesson, as filed: its folder
 * (not a partial one), its manifest with the filed sha256, and every file of the manifest
 * with its size (contents were checked when it was copied; a rollback's quick check asks
 * the reference's queries). Returns why not, or undefined when it holds it.
 */
export async function whyNotKept(satellite: SatelliteConfig, lesson: FiledLesson): Promise<string | undefined> {
  const dir = lessonDir(satellite, lesson.lessonId);
  if (!existsSync(dir)) {
    const kept = existsSync(lessonsDir(satellite))
      ? readdirSync(lessonsDir(satellite)).filter((e) => !e.endsWith('.partial') && e !== lesson.lessonId)
      : [];
    return `${satellite.name} no longer holds lesson ${lesson.lessonId} (it keeps ${kept.length > 0 ? kept.join(', ') : 'none'}; satellites[].keepLessons says how many)`;
  }
  let manifest;
  try {
    manifest = await readManifest(dir, lesson.manifestSha256);
  } catch (err) {
    return `${satellite.name}'s copy of lesson ${lesson.lessonId} is not the filed one: ${(err as Error).message}`;
  }
  const wrong = manifest.files.filter((f) => {
    try {
      return statSync(path.join(dir, ...f.path.split('/'))).size !== f.size;
    } catch {
      return true;
    }
  });
  if (wrong.length > 0)
    return `${satellite.name}'s copy of lesson ${lesson.lessonId} is incomplete: ${wrong
      .slice(0, 5)
      .map((f) => f.path)
      .join(', ')}${wrong.length > 5 ? ` and ${wrong.length - 5} more` : ''} missing or of the wrong size`;
  return undefined;
}
