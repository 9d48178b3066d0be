/**
 * A rollback with the real parts, the way an operator does it: lessons filed with
 * `lessonplan lesson file`, held with `lesson hold`, then `lessonplan lesson rollback`
 * under load through a real HAProxy in front of four Apache satellites, on the Temporal
 * dev server. Satellites keep one earlier lesson besides the served and examined ones
 * (satellites[].keepLessons: 1): after four lessons, the one before can be gone back to
 * without copying; the first is gone, and refused with the reason.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { classifyByAnswers, startLoad } from '../src/cluster/loadGenerator';
import { testCluster } from './helpers/cluster';
import { fileTestLesson, type TestLesson } from './helpers/lessons';
import { runSatelliteWorkers, runWorkersForTest } from './helpers/workers';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('lessonplan lesson rollback on a real cluster (Apache, HAProxy, rsync)', async () => {
  const { config, configFile } = await testCluster('rollback', (raw) => {
    for (const s of raw.satellites) s.keepLessons = 1;
  });
  await runWorkersForTest(config, [{ role: 'orchestration' }, { role: 'reference' }]);
  await runSatelliteWorkers(config, (_name, acts) => acts);
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });
  const frontend = `http://127.0.0.1:${config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0}`;
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-rollback-folders-'));
  /** Each satellite's /version: `lesson file` writes the lesson id there. */
  const served = () => Promise.all(config.satellites.map(async (s) => (await (await fetch(`${s.url}version`)).text()).trim()));

  const folders: TestLesson[] = [];
  const ids: string[] = [];
  /** A folder another pipeline built, filed and held the operator's way. */
  const fileAndHold = async () => {
    const folder = await fileTestLesson(scratch, `folder-${folders.length + 1}`, folders.at(-1));
    folders.push(folder);
    // What lessonplan writes in every lesson is not the pipeline's.
    rmSync(path.join(folder.dir, 'version'));
    rmSync(path.join(folder.dir, '.lesson'), { recursive: true });
    const filed = await lessonplan('--json', 'lesson', 'file', folder.dir, '--query', '/search/term0.json', '--query', '/search/term1.json');
    assert.equal(filed.exitCode, 0, filed.stderr);
    const id = (JSON.parse(filed.stdout) as { lesson: { lessonId: string } }).lesson.lessonId;
    ids.push(id);
    const held = await lessonplan('lesson', 'hold', id, '--watch');
    assert.equal(held.exitCode, 0, `${held.stdout}\n${held.stderr}`);
    return id;
  };

  test('four lessons filed and held: every satellite serves the last', { timeout: 240_000 }, async () => {
    for (let i = 0; i < 4; i++) await fileAndHold();
    assert.equal(new Set(ids).size, 4);
    assert.deepEqual(await served(), Array(4).fill(readFileSync(path.join(config.reference.lessonsDir, ids[3]!, 'version'), 'utf8').trim()));
  });

  test('a lesson the satellites no longer hold is refused with the reason; nothing changes', { timeout: 120_000 }, async () => {
    const before = await served();
    const refused = await lessonplan('lesson', 'rollback', '--to', ids[0]!);
    assert.equal(refused.exitCode, 1, refused.stdout);
    assert.match(refused.stderr, new RegExp(`cannot roll back to lesson ${ids[0]} without copying: \\S+ no longer holds lesson ${ids[0]}`));
    assert.match(refused.stderr, /Nothing was changed/);
    assert.deepEqual(await served(), before);
  });

  test('rollback to the lesson before under load: 0 failed requests, no copy, its wall time reported', { timeout: 120_000 }, async () => {
    // The search files, as each lesson answers them (the version file is the lesson's own).
    const paths = [...folders[3]!.answers.keys()].filter((p) => p.startsWith('/search/'));
    const load = startLoad({
      baseUrl: frontend,
      paths,
      concurrency: 4,
      maxRequests: 200_000,
      maxDurationMs: 120_000,
      classify: classifyByAnswers(folders[3]!.answers, folders[2]!.answers),
    });
    await new Promise((r) => setTimeout(r, 300));
    const rolled = await lessonplan('--json', 'lesson', 'rollback');
    const result = await load.stop();
    assert.equal(rolled.exitCode, 0, `${rolled.stdout}\n${rolled.stderr}`);
    const status = JSON.parse(rolled.stdout) as {
      lessonId: string;
      phase: string;
      wallSeconds: number;
      capacity: { lowestServing: number };
      groups: { satellites: { bytesCopied: number }[] }[];
    };
    console.log(`rollback under load: ${result.requests} requests, ${result.failed} failed, ${status.wallSeconds} s wall`);
    assert.equal(status.lessonId, ids[2]);
    assert.equal(status.phase, 'done');
    assert.ok(status.wallSeconds > 0);
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.equal(result.neither, 0, result.failures.join('\n'));
    assert.ok(
      status.groups.flatMap((g) => g.satellites).every((s) => s.bytesCopied === 0),
      'nothing copied',
    );
    assert.deepEqual(await served(), Array(4).fill(readFileSync(path.join(config.reference.lessonsDir, ids[2]!, 'version'), 'utf8').trim()));
    assert.equal(status.capacity.lowestServing, 2, 'one group out at a time');
  });
});
