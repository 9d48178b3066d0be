/**
 * Lessons built elsewhere, on the real parts: `lessonplan lesson file <folder>` files a
 * folder another pipeline made, `lessonplan lesson hold <lessonId>` rolls it out group by
 * group (Apache satellites behind HAProxy, rsync, the Temporal server), each satellite
 * examined with the `--query` files. A folder that holds lessonplan's own names, a lesson
 * changed since it was filed, and an unknown lesson are refused with the reason.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { preparationTestBed, servedVersions } from './helpers/preparation';
import { onTeardown } from './helpers/stack';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('lesson file and lesson hold', async () => {
  const { config, configFile } = await preparationTestBed('file-hold');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-built-'));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });
  const built = (name: string, answer: string) => {
    const folder = path.join(dir, name);
    mkdirSync(path.join(folder, 'data'), { recursive: true });
    writeFileSync(path.join(folder, 'index.html'), `<h1>${name}</h1>\n`);
    writeFileSync(path.join(folder, 'data/answer.json'), answer);
    return folder;
  };
  const filedId = (stdout: string) => /^filed lesson (\S+):/.exec(stdout)?.[1];

  test('a folder built elsewhere is filed, then held: every satellite serves it', { timeout: 300_000 }, async () => {
    const filed = await lessonplan('lesson', 'file', built('ci-build-1', '{"answer": 42}\n'), '--query', '/data/answer.json');
    assert.equal(filed.exitCode, 0, filed.stderr);
    const lessonId = filedId(filed.stdout);
    assert.ok(lessonId, filed.stdout);
    assert.match(filed.stdout, /: 3 files, 3 changed since no lesson\nhold it with: lessonplan lesson hold /);
    const held = await lessonplan('lesson', 'hold', lessonId, '--watch');
    assert.equal(held.exitCode, 0, held.stderr);
    assert.match(held.stdout, /^started hold-lesson\//);
    assert.match(held.stdout, /holdLesson done: 4 satellites serving/);
    assert.deepEqual(
      await servedVersions(config),
      config.satellites.map(() => lessonId),
    );
    for (const s of config.satellites) assert.equal(await (await fetch(`${s.url}data/answer.json`)).text(), '{"answer": 42}\n');
  });

  test(
    'refused with the reason: lessonplan’s own names in the folder, an unknown lesson, a lesson changed since filing',
    { timeout: 120_000 },
    async () => {
      const withVersion = built('ci-build-bad', '{}\n');
      writeFileSync(path.join(withVersion, 'version'), 'mine\n');
      const refused = await lessonplan('lesson', 'file', withVersion);
      assert.equal(refused.exitCode, 1);
      assert.match(refused.stderr, /version is lessonplan's to write in every lesson: rename it/);

      const unknown = await lessonplan('lesson', 'hold', '20260101-000000-abcdef');
      assert.equal(unknown.exitCode, 1);
      assert.match(unknown.stderr, /there is no lesson 20260101-000000-abcdef in /);

      const filed = await lessonplan('lesson', 'file', built('ci-build-2', '{"answer": 43}\n'));
      const lessonId = filedId(filed.stdout)!;
      writeFileSync(path.join(config.reference.lessonsDir, lessonId, 'data/answer.json'), '{"answer": "changed"}\n');
      const changed = await lessonplan('lesson', 'hold', lessonId);
      assert.equal(changed.exitCode, 1);
      assert.match(changed.stderr, /changed after it was filed \(data\/answer\.json: /);
    },
  );
});
