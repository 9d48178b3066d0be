/**
 * Issue 13: the copy's check against the manifest reports progress only every 250
 * files, against a heartbeat timeout of 15 s, so a slow disk could make Temporal give
 * the copy up. The copy activity runs inside keepAlive (a beat every 5 s): here its
 * check runs on a disk that stops answering for longer than the heartbeat timeout,
 * and the beats the activity sends (recorded by Temporal's MockActivityEnvironment)
 * must never be further apart than the keepAlive's period allows.
 *
 * The stalled disk: every thread of libuv's pool, which does Node's file system calls,
 * is held in a blocking open() of a FIFO nobody writes to. rsync, a child process,
 * goes on; every fs/promises call waits until the FIFOs are opened for writing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createSatelliteActivities } from '../src/activities/satellite';
import { lessonDir, type CopyResult } from '../src/activities/satellite/lessons';
import { verifyAgainstManifest } from '../src/lesson/manifest';
import type { SatelliteConfig } from '../src/config/schema';
import { MANIFEST_FILE, type LessonManifest } from '../src/shared/lesson';
import { HEARTBEAT_EVERY_MS, HEARTBEAT_TIMEOUT } from '../src/shared/heartbeats';
import { fileTestLesson } from './helpers/lessons';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-copy-heartbeat-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const satellite = {
  name: 'boy-1',
  group: 'boys',
  host: 'localhost',
  dataDir: path.join(dir, 'boy-1'),
  url: 'http://127.0.0.1:1/',
  webServer: { kind: 'apache', port: 1, examPort: 2 },
} as SatelliteConfig;

const TIMEOUT_MS = Number(/^(\d+)s$/.exec(HEARTBEAT_TIMEOUT)![1]) * 1_000;
/** Longer than the heartbeat timeout: without a beat of its own, the attempt would be given up. */
const STALL_MS = TIMEOUT_MS + 5_000;
/** A beat at least this often: keepAlive's period, and room for a busy test machine. */
const MAX_GAP_MS = HEARTBEAT_EVERY_MS + 1_500;

/** Holds every thread of libuv's pool until the returned function is called. */
function stallFileSystem(): () => Promise<void> {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const fifos = Array.from({ length: threads }, (_, i) => path.join(dir, `stall-${Date.now()}-${i}`));
  execFileSync('mkfifo', fifos);
  const held = fifos.map((fifo) => open(fifo, 'r'));
  return async () => {
    // A writer that does not wait: the pending open() for reading lets it in, and returns.
    const writers = fifos.map((fifo) => openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    for (const handle of await Promise.all(held)) await handle.close();
    writers.forEach((fd) => closeSync(fd));
    fifos.forEach((fifo) => rmSync(fifo));
  };
}

/** Every file of the manifest is in the folder with its size: rsync has written them all. */
function complete(folder: string, files: { path: string; size: number }[]): boolean {
  return files.every((f) => {
    const file = path.join(folder, f.path);
    return existsSync(file) && statSync(file).size === f.size;
  });
}

/** Runs the copy activity on a stalled disk; returns when each beat came (ms after the start) and when rsync had finished. */
async function copyOnStalledDisk(lesson: Awaited<ReturnType<typeof fileTestLesson>>) {
  const env = new MockActivityEnvironment();
  const start = Date.now();
  const beats: number[] = [];
  env.on('heartbeat', () => beats.push(Date.now() - start));
  const manifest = JSON.parse(readFileSync(path.join(lesson.dir, MANIFEST_FILE), 'utf8')) as LessonManifest;
  let copied: number | undefined;
  const partial = `${lessonDir(satellite, lesson.filed.lessonId)}.partial`;
  const final = lessonDir(satellite, lesson.filed.lessonId);
  const watch = setInterval(() => {
    copied ??= complete(existsSync(partial) ? partial : final, manifest.files) ? Date.now() - start : undefined;
  }, 50);
  const release = stallFileSystem();
  const releaseTimer = setTimeout(() => void release(), STALL_MS);
  try {
    const result = (await env.run(createSatelliteActivities({ satellite }).copyLesson, lesson.filed)) as CopyResult;
    return { result, beats, copied, took: Date.now() - start };
  } finally {
    clearInterval(watch);
    clearTimeout(releaseTimer);
  }
}

function assertBeatsThroughout(beats: number[], from: number, to: number) {
  const marks = [from, ...beats.filter((t) => t > from && t < to), to];
  const gaps = marks.slice(1).map((t, i) => t - marks[i]!);
  assert.ok(Math.max(...gaps) <= MAX_GAP_MS, `beats ${Math.round(from)}..${Math.round(to)} ms: gaps ${gaps.join(', ')} ms (at most ${MAX_GAP_MS})`);
}

test('a copy whose check against the manifest waits on a stalled disk beats every few seconds throughout', { timeout: 120_000 }, async () => {
  const lesson = await fileTestLesson(path.join(dir, 'reference'), 'lesson-1');
  const { result, beats, copied, took } = await copyOnStalledDisk(lesson);
  assert.equal(result.alreadyCopied, false);
  assert.ok(result.filesCopied > 0);
  // rsync was done early; the check of its files could not end before the disk answered again.
  assert.ok(copied !== undefined && copied < 5_000, `rsync done after ${copied} ms`);
  assert.ok(took >= STALL_MS, `the copy took ${took} ms`);
  assert.ok(took - copied >= TIMEOUT_MS, `the check took ${took - copied} ms, longer than the heartbeat timeout`);
  assertBeatsThroughout(beats, copied, took);
});

test('a copy already made is checked again on a stalled disk, and beats every few seconds throughout', { timeout: 120_000 }, async () => {
  const lesson = await fileTestLesson(path.join(dir, 'reference'), 'lesson-2');
  const env = new MockActivityEnvironment();
  await env.run(createSatelliteActivities({ satellite }).copyLesson, lesson.filed);
  assert.ok(readdirSync(lessonDir(satellite, 'lesson-2')).length > 0);

  const { result, beats, took } = await copyOnStalledDisk(lesson);
  assert.equal(result.alreadyCopied, true);
  assert.ok(took >= STALL_MS, `the check took ${took} ms`);
  assertBeatsThroughout(beats, 0, took);
});

test('the check against the manifest reports progress after a slow stretch, not only every 250 files', async () => {
  const lesson = await fileTestLesson(path.join(dir, 'reference'), 'lesson-3');
  const manifest = JSON.parse(readFileSync(path.join(lesson.dir, MANIFEST_FILE), 'utf8')) as LessonManifest;
  assert.ok(manifest.files.length < 250);
  const reports: number[] = [];
  const checking = verifyAgainstManifest(lesson.dir, manifest, (checked) => reports.push(checked));
  // The disk stops answering as the check begins, for a second and a half.
  const release = stallFileSystem();
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  await release();
  assert.deepEqual(await checking, []);
  assert.ok(reports.length > 0 && reports[0]! < manifest.files.length, `progress reported: ${JSON.stringify(reports)}`);
});
